"""Crops to model input tensors as the manifest says (size, CLAHE/gamma, colour order, normalisation,
layout), and the L2 normalisation with NaN/Inf refusal applied to every model's output."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from cardsorter.core.errors import ImageError, ModelError
from cardsorter.core.model_manifest import ModelManifest, Preprocessing

# Rows with a norm below this are refused too: a zero vector has no direction to compare.
MIN_NORM = 1e-12


def _check_crop(crop: np.ndarray, i: int) -> None:
    if not isinstance(crop, np.ndarray) or crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        shape = getattr(crop, "shape", None)
        dtype = getattr(crop, "dtype", type(crop).__name__)
        raise ImageError(f"crop {i} must be an HxWx3 uint8 BGR image, got shape {shape} dtype {dtype}")
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        raise ImageError(f"crop {i} is too small to resize: {crop.shape[1]}x{crop.shape[0]} px")


def resize_to(crop_bgr: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize to the model input size (area interpolation when shrinking, linear when enlarging)."""
    w, h = size_wh
    if crop_bgr.shape[1] == w and crop_bgr.shape[0] == h:
        return crop_bgr
    shrinking = crop_bgr.shape[1] > w or crop_bgr.shape[0] > h
    return cv2.resize(crop_bgr, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def photometric(crop_bgr: np.ndarray, p: Preprocessing) -> np.ndarray:
    """Optional CLAHE on the lightness channel (Lab) and gamma (out = 255 * (in / 255) ** gamma)."""
    out = crop_bgr
    if p.clahe:
        lab = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)
        clahe = cv2.createCLAHE(clipLimit=p.clahe_clip_limit, tileGridSize=(p.clahe_tile_grid, p.clahe_tile_grid))
        lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
        out = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
    if p.gamma != 1.0:
        table = np.clip(255.0 * (np.arange(256) / 255.0) ** p.gamma + 0.5, 0, 255).astype(np.uint8)
        out = cv2.LUT(out, table)
    return out


def prepare_uint8(crops_bgr: Sequence[np.ndarray], manifest: ModelManifest) -> np.ndarray:
    """(N, H, W, 3) uint8 in the model's colour order, resized and photometrically preprocessed."""
    if len(crops_bgr) == 0:
        return np.zeros((0, manifest.input_height, manifest.input_width, 3), np.uint8)
    out = np.empty((len(crops_bgr), manifest.input_height, manifest.input_width, 3), np.uint8)
    for i, crop in enumerate(crops_bgr):
        _check_crop(crop, i)
        img = photometric(resize_to(crop, manifest.input_size_wh), manifest.preprocessing)
        out[i] = img[..., ::-1] if manifest.colour_order == "rgb" else img
    return out


def preprocess_batch(crops_bgr: Sequence[np.ndarray], manifest: ModelManifest) -> np.ndarray:
    """The model's input tensor for a batch of BGR uint8 crops.

    mean_std models get float32 (x - mean) / std in the manifest's layout; in_model (HEF) models get
    the uint8 pixels themselves (NHWC), because the normalisation is compiled into the network."""
    batch = prepare_uint8(crops_bgr, manifest)
    if manifest.normalisation == "in_model":
        if manifest.layout != "nhwc":
            raise ModelError(f"{manifest.path}: a model with normalisation in_model must take nhwc uint8")
        return batch
    x = (batch.astype(np.float32) - np.array(manifest.mean, np.float32)) / np.array(manifest.std, np.float32)
    if manifest.layout == "nchw":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)


def l2_normalize(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise L2 normalisation of (N, D) outputs: (vectors float32, ok bool).

    Rows holding NaN/Inf, or with a zero norm, are refused: ok=False and the row is all zeros
    (never a silently-wrong direction)."""
    x = np.asarray(raw, dtype=np.float64)
    if x.ndim != 2:
        raise ModelError(f"embedding output must be 2-D (N, D), got shape {x.shape}")
    finite = np.all(np.isfinite(x), axis=1)
    safe = np.where(finite[:, None], x, 0.0)
    norms = np.sqrt(np.sum(safe * safe, axis=1))
    ok = finite & (norms > MIN_NORM)
    out = np.zeros(x.shape, np.float32)
    out[ok] = (safe[ok] / norms[ok, None]).astype(np.float32)
    return out, ok
