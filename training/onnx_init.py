"""Start training from a shipped ONNX model: its weights loaded back into the PyTorch network.

The exporter folds every BatchNormalization into the convolution before it, so an ONNX Conv holds
``W * gamma / sqrt(var + eps)`` and a bias. Loaded back, each folded convolution gets those weights and
its BatchNorm becomes the identity on them (gamma 1, beta = the folded bias, mean 0, var 1 - eps): in eval
mode the network computes exactly what the ONNX model computes (checked against onnxruntime). Training
from there must keep the BatchNorm statistics frozen (``freeze_batchnorm``): batch statistics would
re-normalise every layer away from what was learned.

The ONNX graph holds its Conv nodes in the order the network ran them when it was traced, so they are
paired with the network's Conv2d modules in the order a forward pass runs them; every pair must agree
on shape and groups, or nothing is loaded.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from torch import nn


class OnnxInitError(ValueError):
    """The ONNX model does not fit the network (another architecture, width or export)."""


def _conv_order(model: nn.Module, x: torch.Tensor) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    handles = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
               for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(x)
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return order


def _batchnorm_after(model: nn.Module) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each convolution that a BatchNorm follows in the same Sequential."""
    pairs: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    for seq in model.modules():
        if isinstance(seq, nn.Sequential):
            children = list(seq.children())
            for a, b in itertools.pairwise(children):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    pairs[a] = b
    return pairs


def load_onnx_weights(model: nn.Module, onnx_path: Path, input_shape: tuple[int, int, int, int]) -> int:
    """Load ``onnx_path``'s convolution weights into ``model`` (see the module's docstring); returns the
    number of convolutions loaded. Raises OnnxInitError naming the first convolution that does not fit."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    weights = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    onnx_convs = [n for n in graph.node if n.op_type == "Conv"]
    convs = _conv_order(model, torch.zeros(input_shape))
    if len(onnx_convs) != len(convs):
        raise OnnxInitError(f"{onnx_path}: {len(onnx_convs)} Conv nodes, the network runs {len(convs)} convolutions")
    bns = _batchnorm_after(model)
    pairs = []                       # every pair checked before anything is loaded
    for k, (node, conv) in enumerate(zip(onnx_convs, convs, strict=True)):
        w = weights.get(node.input[1])
        b = weights.get(node.input[2]) if len(node.input) > 2 else None
        groups = next((int(a.i) for a in node.attribute if a.name == "group"), 1)
        if w is None or tuple(w.shape) != tuple(conv.weight.shape) or groups != conv.groups:
            raise OnnxInitError(f"{onnx_path}: Conv node {k} ({node.name}) has weight "
                                f"{None if w is None else tuple(w.shape)} group {groups}; the network's "
                                f"convolution {k} has {tuple(conv.weight.shape)} group {conv.groups}")
        if conv not in bns and conv.bias is None and b is not None and np.any(b != 0):
            raise OnnxInitError(f"{onnx_path}: Conv node {k} has a bias the network's convolution lacks")
        pairs.append((conv, w, np.zeros(w.shape[0], np.float32) if b is None else b))
    with torch.no_grad():
        for conv, w, bias in pairs:
            conv.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
            bn = bns.get(conv)
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))
    return len(convs)


def freeze_batchnorm(model: nn.Module) -> None:
    """BatchNorm layers use (and keep) their running statistics while the rest trains."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
