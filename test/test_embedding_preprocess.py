"""Preprocessing against hand-computed values; L2 normalisation and NaN/Inf refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from cardsorter.core.errors import ImageError, ModelError
from cardsorter.core.model_manifest import ModelManifest, Preprocessing
from cardsorter.core.preprocess import l2_normalize, prepare_uint8, preprocess_batch


def manifest(**overrides: object) -> ModelManifest:
    m = ModelManifest(path=Path("m.yaml"), model_id="t", file=Path("m.onnx"), sha256="0" * 64, input_name="in",
                      input_width=2, input_height=2, colour_order="rgb", layout="nchw", normalisation="mean_std",
                      mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0), output_name="out", dimension=4, metric="cos",
                      preprocessing=Preprocessing(), batch_size=0)
    return dataclasses.replace(m, **overrides)  # type: ignore[arg-type]


# A 2x2 BGR crop: pixel (row, col) = (B, G, R)
CROP = np.array([[[0, 10, 20], [30, 40, 50]],
                 [[60, 70, 80], [90, 100, 110]]], np.uint8)


def test_rgb_nchw_mean_std_by_hand() -> None:
    x = preprocess_batch([CROP], manifest())
    assert x.shape == (1, 3, 2, 2) and x.dtype == np.float32
    # channel 0 is R: (R - 10) / 2
    assert np.allclose(x[0, 0], [[(20 - 10) / 2, (50 - 10) / 2], [(80 - 10) / 2, (110 - 10) / 2]])
    # channel 1 is G: (G - 20) / 4
    assert np.allclose(x[0, 1], [[(10 - 20) / 4, (40 - 20) / 4], [(70 - 20) / 4, (100 - 20) / 4]])
    # channel 2 is B: (B - 30) / 5
    assert np.allclose(x[0, 2], [[(0 - 30) / 5, (30 - 30) / 5], [(60 - 30) / 5, (90 - 30) / 5]])


def test_bgr_nhwc_by_hand() -> None:
    x = preprocess_batch([CROP, CROP], manifest(colour_order="bgr", layout="nhwc"))
    assert x.shape == (2, 2, 2, 3)
    assert np.allclose(x[1, 1, 0], [(60 - 10) / 2, (70 - 20) / 4, (80 - 30) / 5])


def test_in_model_gives_raw_uint8_nhwc() -> None:
    x = preprocess_batch([CROP], manifest(normalisation="in_model", layout="nhwc"))
    assert x.dtype == np.uint8 and x.shape == (1, 2, 2, 3)
    assert list(x[0, 0, 1]) == [50, 40, 30]  # RGB
    assert x.flags["C_CONTIGUOUS"]


def test_resizes_to_the_input_size() -> None:
    big = np.zeros((40, 30, 3), np.uint8)
    big[:, :15] = 200
    x = prepare_uint8([big], manifest(input_width=6, input_height=8))
    assert x.shape == (1, 8, 6, 3)
    assert x[0, :, :3].min() == 200 and x[0, :, 3:].max() == 0


def test_gamma_by_hand() -> None:
    crop = np.full((2, 2, 3), 64, np.uint8)
    x = prepare_uint8([crop], manifest(preprocessing=Preprocessing(gamma=2.0)))
    assert int(x[0, 0, 0, 0]) == round(255 * (64 / 255) ** 2)  # 16


def test_clahe_raises_local_contrast() -> None:
    rng = np.random.default_rng(0)
    crop = (100 + rng.integers(0, 12, (64, 64, 1))).repeat(3, axis=2).astype(np.uint8)
    out = prepare_uint8([crop], manifest(input_width=64, input_height=64,
                                         preprocessing=Preprocessing(clahe=True, clahe_clip_limit=4.0)))
    light_in = cv2.cvtColor(crop, cv2.COLOR_BGR2LAB)[..., 0].std()
    light_out = cv2.cvtColor(out[0][..., ::-1].copy(), cv2.COLOR_BGR2LAB)[..., 0].std()
    assert light_out > 1.5 * light_in


def test_bad_crop_is_named_by_index() -> None:
    with pytest.raises(ImageError, match="crop 1"):
        preprocess_batch([CROP, np.zeros((2, 2), np.uint8)], manifest())
    with pytest.raises(ImageError, match="crop 0"):
        preprocess_batch([CROP.astype(np.float32)], manifest())


def test_empty_batch() -> None:
    assert preprocess_batch([], manifest()).shape[0] == 0


def test_l2_normalize_gives_unit_rows() -> None:
    v, ok = l2_normalize(np.array([[3.0, 4.0], [0.0, -2.0]]))
    assert ok.tolist() == [True, True]
    assert v.dtype == np.float32
    assert np.allclose(v, [[0.6, 0.8], [0.0, -1.0]])


def test_nan_inf_and_zero_rows_are_refused() -> None:
    raw = np.array([[1.0, np.nan], [np.inf, 1.0], [0.0, 0.0], [1.0, 1.0]])
    v, ok = l2_normalize(raw)
    assert ok.tolist() == [False, False, False, True]
    assert np.all(v[:3] == 0.0)
    assert np.allclose(v[3], [2 ** -0.5, 2 ** -0.5])


def test_l2_normalize_rejects_a_vector() -> None:
    with pytest.raises(ModelError, match="2-D"):
        l2_normalize(np.ones(3))
