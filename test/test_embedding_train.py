"""Training smoke test: a few steps on a tiny catalogue, ONNX export, onnx backend output == torch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training extra not installed (pip install -r requirements/train.txt)")
pytest.importorskip("onnx", reason="training extra not installed (pip install -r requirements/train.txt)")

from cardsorter.backends.embedders import open_embedder
from cardsorter.core.model_manifest import load_manifest
from cardsorter.sim.catalog import render_catalog
from training.cardnet import CardNet
from training.train_embedder import (
    TrainConfig,
    resize_cards,
    to_input,
    train,
    write_model,
)


@pytest.mark.train
def test_few_steps_export_and_onnx_matches_torch(tmp_path: Path) -> None:
    cfg = TrainConfig(out_dir=tmp_path, cards=6, steps=3, batch=8, max_minutes=10.0, eval_cards=0, dim=64,
                      widths=(8, 16, 16, 32), input_w=48, input_h=64, threads=1)
    model, info = train(cfg, log=lambda _msg: None)
    assert isinstance(model, CardNet) and info["steps"] == 3
    manifest, max_err = write_model(model, cfg, info)
    assert max_err < 1e-4
    assert load_manifest(tmp_path / "cardnet.yaml") == manifest
    assert manifest.dimension == 64 and manifest.input_size_wh == (48, 64)

    crops = list(resize_cards([img for _, img in render_catalog(4, seed=99)], 48, 64))
    embedder = open_embedder("onnx", tmp_path / "cardnet.yaml", threads=1)
    vectors, ok = embedder.embed(crops)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(model(torch.from_numpy(to_input(np.stack(crops))))).numpy()
    assert ok.all()
    assert np.allclose(vectors, expected, atol=1e-4)   # torch vs ONNX Runtime kernels differ per CPU; cos moves < 1e-3
