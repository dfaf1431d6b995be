"""CardDet: a small keypoint-style card detector (centre heatmap + four corner vectors + up vector).

Contract (also written to models/carddet.yaml; decoding is ``cardsorter.core.card_detector_decode``):

Input ``image``: float32 (1, 3, 192, 256) = (N, C, H, W), static shape, **RGB**, values
``x / 255`` (0..1; mean 0, std 255 in 0..255 units). A frame is letterboxed into it: scaled by
``s = min(256 / W, 192 / H)`` (aspect kept), centred, padding grey 114 (see ``letterbox`` in the
decoder module). A 640x480 frame is scaled by 0.4 exactly, no padding.

Outputs, on a grid at stride 4 of the input (48 rows x 64 columns for 192x256):

``heatmaps`` float32 (1, 2, 48, 64), after a sigmoid (0..1):
  - channel 0: card-centre heatmap. A card's centre (mean of its four corners) is a Gaussian peak;
    a detection is a local 3x3 maximum above a threshold, its value the detection score.
  - channel 1: card-corner heatmap (any corner of any card, occluded ones included); used to snap
    the regressed corners onto a nearby peak (sub-cell position from ``geometry`` 8-9).

``geometry`` float32 (1, 12, 48, 64), linear:
  - channels 0-7: the card's four corners relative to this cell's centre, as (dx0, dy0, dx1, dy1,
    dx2, dy2, dx3, dy3) in units of ``CORNER_UNIT_PX`` (16) input pixels. The corners are in
    on-screen clockwise order starting at an arbitrary corner (training is invariant to the
    cyclic shift); the up vector below chooses which corner is the card's top-left.
  - channels 8-9: sub-cell position (dx, dy) of a corner-heatmap peak relative to the cell's
    centre, in input pixels / ``STRIDE`` (-0.5..0.5).
  - channels 10-11: the card's up vector (ux, uy): unit vector in image coordinates (x right,
    y down) from the card's centre towards the middle of its top edge (the edge above its name);
    its length is the network's confidence in the orientation (trained to 1).

Cell (row i, column j) has its centre at input pixel ((j + 0.5) * 4 - 0.5, (i + 0.5) * 4 - 0.5)
(pixel-centre coordinates: pixel p covers [p - 0.5, p + 0.5]).

Operators after ONNX export: Conv (incl. depthwise, group = channels), BatchNormalization (folded
into Conv by the exporter in eval mode), Relu, Add, Concat, Resize (nearest, x2), Sigmoid. No
dynamic shapes, no reshapes: IMX500 / MCT-compatible.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps", "geometry")
INPUT_W = 256
INPUT_H = 192
STRIDE = 4
CORNER_UNIT_PX = 16.0
"""Corner offsets are regressed in units of 16 input pixels (a 640x480 frame: 40 frame pixels)."""
HEATMAP_CHANNELS = 2
GEOMETRY_CHANNELS = 12


def conv_bn_relu(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, relu: bool = True
                 ) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(c_out)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride 1 or 2), 1x1 project; Add when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.block = nn.Sequential(conv_bn_relu(c_in, mid, 1), conv_bn_relu(mid, mid, 3, stride, groups=mid),
                                   conv_bn_relu(mid, c_out, 1, relu=False))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


def stage(c_in: int, c_out: int, blocks: int, expand: int) -> nn.Sequential:
    layers: list[nn.Module] = [InvertedResidual(c_in, c_out, 2, expand)]
    layers += [InvertedResidual(c_out, c_out, 1, expand) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CardDet(nn.Module):
    """Backbone at strides 4-8-16-32, a top-down path (nearest x2 upsample + Concat) to stride 4, two heads."""

    def __init__(self, widths: tuple[int, int, int, int] = (24, 40, 80, 128), head: int = 48) -> None:
        super().__init__()
        w4, w8, w16, w32 = widths
        self.stem = nn.Sequential(conv_bn_relu(3, 16, 3, 2), conv_bn_relu(16, 16, 3, 1, groups=16),
                                  conv_bn_relu(16, w4, 1))                       # stride 2
        self.s4 = stage(w4, w4, 2, 2)
        self.s8 = stage(w4, w8, 2, 3)
        self.s16 = stage(w8, w16, 3, 3)
        self.s32 = stage(w16, w32, 3, 3)
        self.context = nn.Sequential(conv_bn_relu(w32, w32, 3, 1, groups=w32), conv_bn_relu(w32, w32, 1))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse16 = nn.Sequential(conv_bn_relu(w32 + w16, w16, 1), conv_bn_relu(w16, w16, 3, groups=w16),
                                    conv_bn_relu(w16, w16, 1))
        self.fuse8 = nn.Sequential(conv_bn_relu(w16 + w8, head, 1), conv_bn_relu(head, head, 3, groups=head),
                                   conv_bn_relu(head, head, 1))
        self.fuse4 = nn.Sequential(conv_bn_relu(head + w4, head, 1), conv_bn_relu(head, head, 3, groups=head),
                                   conv_bn_relu(head, head, 1))
        self.heat = nn.Sequential(conv_bn_relu(head, head, 3, groups=head), nn.Conv2d(head, HEATMAP_CHANNELS, 1))
        self.geom = nn.Sequential(conv_bn_relu(head, head, 3, groups=head), conv_bn_relu(head, head, 1),
                                  nn.Conv2d(head, GEOMETRY_CHANNELS, 1))
        self.sigmoid = nn.Sigmoid()
        nn.init.constant_(self.heat[-1].bias, -4.0)  # focal-loss prior: start with ~2 % heat everywhere

    def forward_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(heatmap logits, geometry): training uses the logits for a numerically stable focal loss."""
        f2 = self.stem(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        f16 = self.s16(f8)
        f32 = self.context(self.s32(f16))
        p16 = self.fuse16(torch.cat([self.up(f32), f16], 1))
        p8 = self.fuse8(torch.cat([self.up(p16), f8], 1))
        p4 = self.fuse4(torch.cat([self.up(p8), f4], 1))
        return self.heat(p4), self.geom(p4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, geometry = self.forward_logits(x)
        return self.sigmoid(logits), geometry


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_hw: tuple[int, int] = (INPUT_H, INPUT_W)) -> int:
    """Multiply-accumulates of one forward pass (convolutions only; the rest is negligible)."""
    macs = 0

    def hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal macs
        assert isinstance(module, nn.Conv2d)
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        macs += int(out.numel()) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, *input_hw))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs
