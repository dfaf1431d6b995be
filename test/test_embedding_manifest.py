"""Model manifests: parsing, every validation error, sha256 verification, writing."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cardsorter.core.errors import ModelError
from cardsorter.core.model_manifest import (
    REQUIRED_KEYS,
    load_manifest,
    verified_model_bytes,
    write_manifest,
)

MODEL_BYTES = b"not really onnx, but bytes with a known hash"


def valid_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "model_id": "test-model", "file": "m.onnx", "sha256": hashlib.sha256(MODEL_BYTES).hexdigest(),
        "input_name": "input", "input_width": 112, "input_height": 160, "colour_order": "rgb", "layout": "nchw",
        "normalisation": "mean_std", "mean": [127.5, 127.5, 127.5], "std": [64.0, 64.0, 64.0],
        "output_name": "embedding", "dimension": 768, "metric": "cos",
    }
    fields.update(overrides)
    return fields


def write(tmp_path: Path, fields: dict[str, Any], model: str = "m.onnx") -> Path:
    (tmp_path / model).write_bytes(MODEL_BYTES)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


def test_valid_manifest_loads(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, valid_fields(preprocessing={"clahe": True, "gamma": 0.8})))
    assert m.model_id == "test-model"
    assert m.file == (tmp_path / "m.onnx").resolve()
    assert m.input_size_wh == (112, 160)
    assert m.format == "onnx" and m.dimension == 768 and m.layout == "nchw"
    assert m.mean == (127.5, 127.5, 127.5) and m.std == (64.0, 64.0, 64.0)
    assert m.preprocessing.clahe and m.preprocessing.gamma == 0.8
    assert m.batch_size == 0


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_key_is_named(tmp_path: Path, key: str) -> None:
    fields = valid_fields()
    del fields[key]
    with pytest.raises(ModelError, match=f"'{key}'"):
        load_manifest(write(tmp_path, fields))


@pytest.mark.parametrize(("key", "value"), [
    ("colour_order", "cmyk"), ("layout", "chw"), ("metric", "l2"), ("normalisation", "zscore"),
    ("sha256", "abc"), ("sha256", "z" * 64), ("input_width", 0), ("input_height", "160"), ("dimension", 0),
    ("dimension", 7.5), ("mean", [1, 2]), ("std", [64, 0, 64]), ("std", [64, "x", 64]), ("file", "m.pt"),
    ("model_id", ""), ("batch_size", -1), ("preprocessing", "clahe"), ("input_width", True),
])
def test_bad_value_is_named(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(ModelError, match=f"'{key}"):
        load_manifest(write(tmp_path, valid_fields(**{key: value})))


@pytest.mark.parametrize(("pre", "key"), [
    ({"sharpen": True}, "preprocessing.sharpen"), ({"clahe": "yes"}, "preprocessing.clahe"),
    ({"gamma": 0}, "preprocessing.gamma"), ({"clahe_clip_limit": -1}, "preprocessing.clahe_clip_limit"),
    ({"clahe_tile_grid": 0}, "preprocessing.clahe_tile_grid"),
])
def test_bad_preprocessing_is_named(tmp_path: Path, pre: dict[str, Any], key: str) -> None:
    with pytest.raises(ModelError, match=key.replace(".", r"\.")):
        load_manifest(write(tmp_path, valid_fields(preprocessing=pre)))


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="'colour'"):
        load_manifest(write(tmp_path, valid_fields(colour="rgb")))


def test_hef_needs_nhwc_and_in_model_normalisation(tmp_path: Path) -> None:
    base = valid_fields(file="m.hef")
    with pytest.raises(ModelError, match="'layout'"):
        load_manifest(write(tmp_path, base, "m.hef"))
    with pytest.raises(ModelError, match="'normalisation'"):
        load_manifest(write(tmp_path, {**base, "layout": "nhwc"}, "m.hef"))
    fields = {k: v for k, v in base.items() if k not in ("mean", "std")}
    m = load_manifest(write(tmp_path, {**fields, "layout": "nhwc", "normalisation": "in_model"}, "m.hef"))
    assert m.format == "hef" and m.normalisation == "in_model"


def test_mean_conflicts_with_in_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="'mean' conflicts"):
        load_manifest(write(tmp_path, valid_fields(normalisation="in_model", layout="nhwc")))


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ModelError, match="mapping"):
        load_manifest(path)


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("model_id: [unclosed\n")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_manifest(path)


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nothere.yaml"):
        load_manifest(tmp_path / "nothere.yaml")


def test_sha256_is_verified(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, valid_fields()))
    assert verified_model_bytes(m) == MODEL_BYTES
    (tmp_path / "m.onnx").write_bytes(MODEL_BYTES + b"tampered")
    with pytest.raises(ModelError, match="sha256"):
        verified_model_bytes(m)


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, valid_fields()))
    (tmp_path / "m.onnx").unlink()
    with pytest.raises(ModelError, match="m.onnx"):
        verified_model_bytes(m)


def test_write_manifest_round_trips(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(MODEL_BYTES)
    m = write_manifest(tmp_path / "out.yaml", valid_fields(training={"steps": 3}))
    assert m == load_manifest(tmp_path / "out.yaml")
    assert next(iter(yaml.safe_load((tmp_path / "out.yaml").read_text()))) == "model_id"
