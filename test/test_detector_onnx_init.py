"""Training can start from a shipped carddet.onnx: its weights go back into the PyTorch network exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra not installed (pip install -r requirements/train.txt)")
pytest.importorskip("onnx", reason="training extra not installed (pip install -r requirements/train.txt)")

from training.detector_model import INPUT_H, INPUT_W, CardDet
from training.onnx_init import OnnxInitError, freeze_batchnorm, load_onnx_weights

SHAPE = (1, 3, INPUT_H, INPUT_W)


def _export(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    torch.onnx.export(model, (torch.rand(*SHAPE),), str(path), input_names=["image"],
                      output_names=["heatmaps", "geometry"], opset_version=17, dynamo=False,
                      do_constant_folding=True)


@pytest.mark.train
def test_an_exported_network_loads_back_into_a_fresh_one_and_computes_the_same(tmp_path: Path) -> None:
    torch.manual_seed(3)
    trained = CardDet()
    for m in trained.modules():          # BatchNorm statistics that are not the identity: folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    _export(trained, tmp_path / "carddet.onnx")
    fresh = CardDet()
    assert load_onnx_weights(fresh, tmp_path / "carddet.onnx", SHAPE) == 49
    fresh.eval()
    x = torch.rand(*SHAPE)
    with torch.no_grad():
        for want, got in zip(trained(x), fresh(x), strict=True):
            assert np.abs(want.numpy() - got.numpy()).max() < 1e-3
    # training from there keeps the statistics: BatchNorm stays in eval mode inside a training network
    fresh.train()
    freeze_batchnorm(fresh)
    fresh(x)
    with torch.no_grad():
        fresh.eval()
        for want, got in zip(trained(x), fresh(x), strict=True):
            assert np.abs(want.numpy() - got.numpy()).max() < 1e-3


@pytest.mark.train
def test_an_onnx_model_of_another_network_is_refused_naming_the_convolution(tmp_path: Path) -> None:
    _export(CardDet(head=32), tmp_path / "narrow.onnx")
    with pytest.raises(OnnxInitError, match=r"narrow\.onnx: Conv node \d+ .* has weight"):
        load_onnx_weights(CardDet(), tmp_path / "narrow.onnx", SHAPE)
