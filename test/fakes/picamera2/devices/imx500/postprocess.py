"""Fake of picamera2.devices.imx500.postprocess: scale_boxes as the real one computes it."""

from __future__ import annotations

import numpy as np


def scale_boxes(boxes: np.ndarray, h_image: int, w_image: int, h_model: int, w_model: int,
                preserve_aspect_ratio: bool, normalized: bool = True) -> np.ndarray:
    """(y0, x0, y1, x1) boxes from model-input pixels (or normalised) to image pixels."""
    deltaH, deltaW = 0.0, 0.0
    H, W = h_model, w_model
    scale_H, scale_W = h_image / H, w_image / W
    if preserve_aspect_ratio:
        scale_H = scale_W = max(h_image / H, w_image / W)
        H_tag = int(np.round(h_image / scale_H))
        W_tag = int(np.round(w_image / scale_W))
        deltaH, deltaW = int((H - H_tag) / 2), int((W - W_tag) / 2)
    boxes = np.asarray(boxes, dtype=np.float64) * ([H, W, H, W] if normalized else 1.0)
    boxes = boxes - np.array([deltaH, deltaW, deltaH, deltaW])
    boxes = boxes * np.array([scale_H, scale_W, scale_H, scale_W])
    boxes = np.clip(boxes, 0, [h_image, w_image, h_image, w_image])
    return boxes
