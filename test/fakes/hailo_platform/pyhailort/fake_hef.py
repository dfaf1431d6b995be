"""Writes the fake's "HEF": an .npz with stream names, shapes, quantisation and a linear model."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np


def write_fake_hef(path: str | Path, *, input_hw: tuple[int, int], dimension: int, seed: int = 0,
                   input_name: str = "cardnet/input_layer1", output_name: str = "cardnet/fc1",
                   output_scale: float = 0.05, output_zero_point: float = 128.0,
                   nan_on_dark_input: bool = False) -> bytes:
    """A HEF stand-in: output = ((x / 255) - 0.5).flatten() @ W for uint8 HWC input x.

    nan_on_dark_input: frames whose mean is below 5 give NaN outputs (a broken device or model)."""
    h, w = input_hw
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 1.0 / np.sqrt(h * w * 3), (h * w * 3, dimension)).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, input_name=np.array(input_name), output_name=np.array(output_name),
             input_shape=np.array([h, w, 3]), output_shape=np.array([dimension]), weight=weight,
             qp_scale=np.float32(output_scale), qp_zp=np.float32(output_zero_point),
             nan_on_dark_input=np.array(nan_on_dark_input))
    data = buf.getvalue()
    Path(path).write_bytes(data)
    return data
