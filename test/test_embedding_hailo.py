"""The hailo backend against the fake hailo_platform (test/fakes/hailo_platform, HailoRT 4.23 surface)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from cardsorter.backends.embedders import HailoEmbedder, open_embedder
from cardsorter.core.errors import ModelError
from cardsorter.core.model_manifest import file_sha256

FAKES = Path(__file__).parent / "fakes"
H, W, D = 16, 12, 32


@pytest.fixture
def hailo(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m.startswith("hailo_platform")]:
        monkeypatch.delitem(sys.modules, name)
    import hailo_platform
    from hailo_platform.pyhailort.pyhailort import VDevice

    VDevice._open.clear()
    VDevice.created.clear()
    yield hailo_platform
    VDevice._open.clear()


def make_model(tmp_path: Path, *, batch_size: int = 1, nan_on_dark_input: bool = False,
               **manifest_changes: Any) -> Path:
    sys.path.insert(0, str(FAKES))
    try:
        from hailo_platform.pyhailort.fake_hef import write_fake_hef
    finally:
        sys.path.remove(str(FAKES))
    hef = tmp_path / "fake.hef"
    write_fake_hef(hef, input_hw=(H, W), dimension=D, seed=3, nan_on_dark_input=nan_on_dark_input)
    raw: dict[str, Any] = {
        "model_id": "fake-hef", "file": "fake.hef", "sha256": file_sha256(hef),
        "input_name": "cardnet/input_layer1", "input_width": W, "input_height": H, "colour_order": "rgb",
        "layout": "nhwc", "normalisation": "in_model", "output_name": "cardnet/fc1", "dimension": D,
        "metric": "cos", "batch_size": batch_size,
    }
    raw.update(manifest_changes)
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(n)]


def reference(hef: Path, crop_bgr: np.ndarray) -> np.ndarray:
    """What a correct host does: RGB uint8 in, dequantised float out, L2-normalised."""
    z = np.load(hef)
    x = crop_bgr[..., ::-1].astype(np.float32).reshape(-1) / 255.0 - 0.5
    y = x @ z["weight"]
    scale, zp = float(z["qp_scale"]), float(z["qp_zp"])
    y = (np.clip(np.round(y / scale + zp), 0, 255) - zp) * scale
    return y / np.linalg.norm(y)


def test_embeds_like_the_reference(hailo: Any, tmp_path: Path) -> None:
    manifest = make_model(tmp_path)
    batch = crops(3)
    with open_embedder("hailo", manifest, threads=1) as e:  # type: ignore[attr-defined]
        vectors, ok = e.embed(batch)
    assert ok.all() and vectors.shape == (3, D) and vectors.dtype == np.float32
    for v, c in zip(vectors, batch, strict=True):
        assert np.allclose(v, reference(tmp_path / "fake.hef", c), atol=1e-5)


def test_uses_one_vdevice_with_round_robin_and_float32_output(hailo: Any, tmp_path: Path) -> None:
    e = open_embedder("hailo", make_model(tmp_path), threads=1)
    (vdevice,) = hailo.VDevice.created
    assert vdevice.params.scheduling_algorithm == hailo.HailoSchedulingAlgorithm.ROUND_ROBIN
    (model,) = vdevice.infer_models
    assert model.input().format.type == hailo.FormatType.UINT8
    assert model.output().format.type == hailo.FormatType.FLOAT32
    e.close()
    assert vdevice.released and model.configured[0].shut_down


def test_splits_batches_as_compiled(hailo: Any, tmp_path: Path) -> None:
    e = open_embedder("hailo", make_model(tmp_path, batch_size=2), threads=1)
    assert isinstance(e, HailoEmbedder)
    batch = crops(5)
    vectors, _ = e.embed(batch)
    cim = hailo.VDevice.created[0].infer_models[0].configured[0]
    assert cim.run_sizes == [2, 2, 1]
    assert hailo.VDevice.created[0].infer_models[0].batch_size == 2
    single = np.concatenate([e.embed([c])[0] for c in batch])
    assert np.allclose(vectors, single, atol=1e-6)
    e.close()


def test_nan_output_is_refused_per_row(hailo: Any, tmp_path: Path) -> None:
    e = open_embedder("hailo", make_model(tmp_path, nan_on_dark_input=True, batch_size=4), threads=1)
    batch = crops(3)
    batch[1] = np.zeros((H, W, 3), np.uint8)
    vectors, ok = e.embed(batch)
    assert ok.tolist() == [True, False, True]
    assert np.all(vectors[1] == 0.0)
    assert np.allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-5)
    e.close()


def test_resizes_crops_to_the_hef_input(hailo: Any, tmp_path: Path) -> None:
    with open_embedder("hailo", make_model(tmp_path), threads=1) as e:  # type: ignore[attr-defined]
        vectors, ok = e.embed([np.full((90, 70, 3), 120, np.uint8)])
    assert ok.all() and vectors.shape == (1, D)


def test_second_embedder_needs_the_first_closed(hailo: Any, tmp_path: Path) -> None:
    manifest = make_model(tmp_path)
    first = open_embedder("hailo", manifest, threads=1)
    with pytest.raises(ModelError, match="HAILO_OUT_OF_PHYSICAL_DEVICES"):
        open_embedder("hailo", manifest, threads=1)
    first.close()
    open_embedder("hailo", manifest, threads=1).close()


@pytest.mark.parametrize(("changes", "match"), [
    ({"dimension": 64}, "dimension 64"),
    ({"output_name": "fc9"}, "'output_name'"),
    ({"input_name": "in9"}, "'input_name'"),
    ({"input_width": 24}, "input shape"),
    ({"sha256": "0" * 64}, "sha256"),
])
def test_mismatched_manifest_fails_at_start_and_releases_the_device(
        hailo: Any, tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        open_embedder("hailo", make_model(tmp_path, **changes), threads=1)
    assert not hailo.VDevice._open


def test_closed_embedder_refuses_work(hailo: Any, tmp_path: Path) -> None:
    e = open_embedder("hailo", make_model(tmp_path), threads=1)
    e.close()
    e.close()  # idempotent
    with pytest.raises(ModelError, match="closed"):
        e.embed(crops(1))


def test_without_hailort_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    manifest = make_model(tmp_path)
    monkeypatch.setitem(sys.modules, "hailo_platform", None)
    with pytest.raises(ModelError, match="hailo_platform"):
        open_embedder("hailo", manifest, threads=1)


def test_onnx_manifest_is_refused_by_the_hailo_backend(hailo: Any, tmp_path: Path) -> None:
    from cardsorter.core.model_manifest import load_manifest

    manifest = make_model(tmp_path)
    m = load_manifest(manifest)
    import dataclasses

    with pytest.raises(ModelError, match="backend hailo cannot run"):
        HailoEmbedder(dataclasses.replace(m, file=tmp_path / "x.onnx"))
