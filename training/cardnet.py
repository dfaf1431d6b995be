"""CardNet: a small pure-CNN card embedder (Conv/BatchNorm/ReLU/Add/pooling/Gemm only: Hailo-compilable)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut (Add is a plain elementwise op on Hailo)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(c, c)
        self.conv2 = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.conv2(self.conv1(x)))


class CardNet(nn.Module):
    """Input (N, 3, H, W) normalised RGB; output (N, dim) un-normalised embedding (host L2-normalises).

    Four stride-2 stages then global average + max pooling (concatenated) and one Gemm. Global
    pooling makes the size independent of the input resolution; the residual blocks give enough
    receptive field to see the card's layout (name band, artwork, footer) as a whole."""

    def __init__(self, dim: int = 768, widths: tuple[int, ...] = (24, 48, 96, 160)) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu(3, widths[0], 2)]
        c = widths[0]
        for i, w in enumerate(widths):
            if i > 0:
                layers.append(conv_bn_relu(c, w, 2))
                c = w
            layers.append(ResidualBlock(c))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * c, dim)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([F.adaptive_avg_pool2d(f, 1), F.adaptive_max_pool2d(f, 1)], dim=1)
        return self.head(torch.flatten(pooled, 1))


class ArcMarginHead(nn.Module):
    """ArcFace (additive angular margin) logits for metric learning; used only in training."""

    def __init__(self, dim: int, classes: int, scale: float = 30.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, dim))
        nn.init.xavier_uniform_(self.weight)
        self.scale = scale

    def forward(self, emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
        cos = F.linear(F.normalize(emb), F.normalize(self.weight)).clamp(-1 + 1e-6, 1 - 1e-6)
        if margin > 0:
            theta = torch.acos(cos.gather(1, labels[:, None]))
            target = torch.cos(theta + margin)
            cos = cos.scatter(1, labels[:, None], target)
        return cos * self.scale


def count_macs(model: nn.Module, input_hw: tuple[int, int]) -> int:
    """Multiply-accumulates of one forward pass (convolutions and Gemm; BN/ReLU/pooling are negligible)."""
    macs = 0

    def conv_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(m, nn.Conv2d)
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += int(out.numel() // out.shape[0]) * k

    def linear_hook(m: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(m, nn.Linear)
        macs += m.in_features * m.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, *input_hw))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return macs
