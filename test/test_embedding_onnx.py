"""The onnx backend with the repository's default model (models/cardnet.yaml)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from cardsorter.backends.embedders import OnnxEmbedder, open_embedder
from cardsorter.config import REPO_ROOT
from cardsorter.core.errors import ModelError
from cardsorter.core.model_manifest import load_manifest
from cardsorter.settings import load_settings
from cardsorter.sim.catalog import render_catalog

DEFAULT_MANIFEST = REPO_ROOT / "models" / "cardnet.yaml"


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    e = open_embedder("onnx", DEFAULT_MANIFEST, threads=1)
    assert isinstance(e, OnnxEmbedder)
    return e


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    return [img for _, img in render_catalog(5, seed=21)]


def copy_model(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    shutil.copy(DEFAULT_MANIFEST.parent / raw["file"], tmp_path / raw["file"])
    raw.update(changes)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_default_manifest_matches_the_committed_model() -> None:
    m = load_manifest(DEFAULT_MANIFEST)
    assert m.format == "onnx" and m.metric == "cos"


def test_embedder_section_points_at_a_loadable_model() -> None:
    embedder = load_settings().embedder
    assert embedder.backend in ("onnx", "hailo")
    assert load_manifest(REPO_ROOT / embedder.model_manifest).model_id


def test_embeds_to_unit_vectors(embedder: OnnxEmbedder, crops: list[np.ndarray]) -> None:
    vectors, ok = embedder.embed(crops)
    assert vectors.shape == (5, embedder.dimension) and vectors.dtype == np.float32
    assert ok.all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.input_size_wh == load_manifest(DEFAULT_MANIFEST).input_size_wh
    assert embedder.model_id == load_manifest(DEFAULT_MANIFEST).model_id


# Batched and one-by-one runs may take different ONNX Runtime kernels (per CPU). What a decision sees
# is a cosine distance, banded at 0.02 and compared in the goldens within 0.005: vectors that differ
# by at most EMBEDDING_ATOL per component move it by at most sqrt(768) * 1e-4 = 0.003.
EMBEDDING_ATOL = 1e-4


def test_batch_equals_one_by_one(embedder: OnnxEmbedder, crops: list[np.ndarray]) -> None:
    batch, _ = embedder.embed(crops)
    single = np.concatenate([embedder.embed([c])[0] for c in crops])
    assert np.allclose(batch, single, atol=EMBEDDING_ATOL)


def test_different_cards_give_different_vectors(embedder: OnnxEmbedder, crops: list[np.ndarray]) -> None:
    v, _ = embedder.embed(crops)
    sims = v @ v.T
    assert np.all(sims[~np.eye(5, dtype=bool)] < 0.999)


def test_empty_batch(embedder: OnnxEmbedder) -> None:
    v, ok = embedder.embed([])
    assert v.shape == (0, embedder.dimension) and ok.shape == (0,)


def test_manifest_with_a_fixed_batch_splits_runs(tmp_path: Path, crops: list[np.ndarray],
                                                  embedder: OnnxEmbedder) -> None:
    e = OnnxEmbedder(load_manifest(copy_model(tmp_path, batch_size=2)), threads=1)
    assert np.allclose(e.embed(crops)[0], embedder.embed(crops)[0], atol=EMBEDDING_ATOL)


@pytest.mark.parametrize(("changes", "match"), [
    ({"output_name": "logits"}, "'output_name'"),
    ({"input_name": "image"}, "'input_name'"),
    ({"dimension": 512}, "dimension 512"),
    ({"input_width": 96}, "input"),   # the model was exported for another width
    ({"sha256": "0" * 64}, "sha256"),
])
def test_mismatched_manifest_fails_at_start(tmp_path: Path, changes: dict[str, object], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        open_embedder("onnx", copy_model(tmp_path, **changes), threads=1)


def test_unknown_backend_is_named() -> None:
    with pytest.raises(ModelError, match="'tpu'"):
        open_embedder("tpu", DEFAULT_MANIFEST, threads=1)
