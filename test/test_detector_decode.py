"""CardDet output decoding (core/card_detector_decode.py): exact targets decode back to the cards, shapes, orientation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardsorter.core.card_detector_decode import (
    CLASS_CARD,
    CLASS_DOUBLE_FEED,
    DEFAULT_DECODE,
    decode,
    letterbox_for,
    local_maxima,
    order_by_up,
    quad_overlap,
)
from cardsorter.core.types import Orientation
from training.detector_targets import make_targets, targets_to_outputs

GRID = (48, 64)          # a 256x192 input at stride 4
INPUT_WH = (256, 192)


def card(centre: tuple[float, float], long_px: float, angle_deg: float) -> np.ndarray:
    """Corners clockwise from the card's top-left (y down); angle 0 = upright."""
    hh, hw = long_px / 2, long_px / 2 * 63 / 88
    q = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(q @ rot.T + np.asarray(centre))


def outputs(quads: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return targets_to_outputs(make_targets(quads, GRID))


def identity() -> object:
    return letterbox_for(INPUT_WH, INPUT_WH)


@pytest.mark.parametrize("angle", [0.0, 12.0, 90.0, 180.0, 200.0, 271.0])
def test_exact_outputs_decode_to_the_card_top_left_first(angle: float) -> None:
    quad = card((128.3, 95.7), 120, angle)
    (det,) = decode(*outputs([quad]), identity(), DEFAULT_DECODE)   # type: ignore[arg-type]
    assert det.class_name == CLASS_CARD
    np.testing.assert_allclose(np.asarray(det.quad_px), quad, atol=1e-3)
    upright = (quad[0, 1] + quad[1, 1]) <= (quad[2, 1] + quad[3, 1])
    assert det.orientation == (Orientation.UPRIGHT if upright else Orientation.ROTATED_180)
    assert 0.99 <= det.score <= 1.0


def test_several_cards_are_several_detections_highest_score_first() -> None:
    quads = [card((50, 60), 70, 5), card((130, 100), 80, 185), card((210, 70), 60, -10)]
    dets = decode(*outputs(quads), identity(), DEFAULT_DECODE)   # type: ignore[arg-type]
    assert len(dets) == 3 and all(d.class_name == CLASS_CARD for d in dets)
    for q in quads:
        assert min(float(np.abs(np.asarray(d.quad_px) - q).max()) for d in dets) < 1e-3


def test_overlapping_cards_become_one_double_feed() -> None:
    a, b = card((110, 96), 120, 0), card((150, 110), 120, 15)
    assert quad_overlap(a, b) > DEFAULT_DECODE.double_feed_overlap
    (det,) = decode(*outputs([a, b]), identity(), DEFAULT_DECODE)   # type: ignore[arg-type]
    assert det.class_name == CLASS_DOUBLE_FEED and det.orientation == Orientation.UNKNOWN
    both = np.vstack([a, b])
    assert det.bbox_px.x <= both[:, 0].min() + 1e-6 and det.bbox_px.x + det.bbox_px.w >= both[:, 0].max() - 1e-6


def test_letterbox_maps_input_pixels_back_to_the_frame() -> None:
    lb = letterbox_for((640, 480), INPUT_WH)
    assert lb.scale == pytest.approx(0.4) and lb.offset_x_px == 0 and lb.offset_y_px == 0
    frame_quad = card((300.0, 250.0), 300, 7)
    input_quad = (frame_quad + 0.5) * 0.4 - 0.5
    (det,) = decode(*outputs([input_quad]), lb, DEFAULT_DECODE)
    np.testing.assert_allclose(np.asarray(det.quad_px), frame_quad, atol=1e-2)
    wide = letterbox_for((1280, 480), INPUT_WH)            # 8:3 into 4:3: padded top and bottom
    assert wide.scale == pytest.approx(0.2) and wide.offset_x_px == 0 and wide.offset_y_px == 48


def test_weak_up_vector_gives_unknown_orientation_and_geometric_order() -> None:
    quad = card((100, 100), 100, 180)
    ordered, orientation = order_by_up(quad, np.array([0.0, 0.1]), 0.5)
    assert orientation == Orientation.UNKNOWN
    # short side nearer the image top first
    assert ordered[0, 1] + ordered[1, 1] < ordered[2, 1] + ordered[3, 1]
    assert np.linalg.norm(ordered[1] - ordered[0]) < np.linalg.norm(ordered[2] - ordered[1])


def test_nothing_above_threshold_is_no_detection() -> None:
    heat, geo = outputs([])
    assert decode(heat, geo, identity(), DEFAULT_DECODE) == []   # type: ignore[arg-type]
    heat[0, 0, 10, 10] = DEFAULT_DECODE.score_min * 0.9
    assert decode(heat, geo, identity(), DEFAULT_DECODE) == []   # type: ignore[arg-type]


def test_local_maxima_are_3x3_peaks_highest_first() -> None:
    heat = np.zeros((8, 8), np.float32)
    heat[2, 2], heat[2, 3], heat[6, 6] = 0.9, 0.8, 0.95
    assert local_maxima(heat, 0.5, 10) == [(6, 6, pytest.approx(0.95)), (2, 2, pytest.approx(0.9))]


@pytest.mark.parametrize(("heat_shape", "geo_shape", "what"), [
    ((1, 3, 48, 64), (1, 12, 48, 64), "heatmaps"),
    ((1, 2, 48, 64), (1, 12, 24, 32), "geometry"),
    ((2, 2, 48, 64), (2, 12, 48, 64), "batch"),
])
def test_wrong_tensor_shapes_are_named(heat_shape: tuple[int, ...], geo_shape: tuple[int, ...], what: str) -> None:
    with pytest.raises(ValueError, match=what):
        decode(np.zeros(heat_shape, np.float32), np.zeros(geo_shape, np.float32), identity(),  # type: ignore[arg-type]
               DEFAULT_DECODE)
