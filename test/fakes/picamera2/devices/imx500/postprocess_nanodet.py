"""Fake of postprocess_nanodet_detection.

The real function decodes NanoDet's raw distribution tensors; the fake rig scripts already
decoded rows instead: outputs (1, N, 6) = [y0, x0, y1, x1 (input pixels), score, class]. Score
threshold, NMS-free top-k and the return shape [(boxes, scores, classes)] match the real one.
"""

from __future__ import annotations

import numpy as np


def postprocess_nanodet_detection(outputs: np.ndarray, conf: float = 0.0, iou_thres: float = 0.65,
                                  max_out_dets: int = 300) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rows = np.asarray(outputs)[0]
    keep = rows[:, 4] >= conf
    rows = rows[keep]
    rows = rows[np.argsort(-rows[:, 4])][:max_out_dets]
    return [(rows[:, :4], rows[:, 4], rows[:, 5])]
