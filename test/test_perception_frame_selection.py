"""Detection-gated frame selection: new, moved, expired, blurry, settled."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from perception_support import box_detection, card_image, gate_config

from cardsorter.core.frame_selection import (
    SKIP_BLURRY,
    SKIP_CACHED,
    SKIP_DOUBLE_FEED,
    SKIP_SETTLED,
    FrameSelector,
    FrameSelectorConfig,
    crop_sharpness,
)
from cardsorter.core.types import Detection
from cardsorter.core.warp import warp_card

CROP_WH = (64, 88)
SHARPNESS_MIN = 100.0   # for these small crops: a sharp card scores ~350, blurred by sigma >= 1.8 below 25


def frame_with_card(x: int, y: int, blur_sigma: float = 0.0, seed: int = 1) -> np.ndarray:
    frame = np.full((480, 640, 3), 60, np.uint8)
    card = cv2.resize(card_image(seed), (60, 84), interpolation=cv2.INTER_AREA)
    if blur_sigma > 0:
        card = cv2.GaussianBlur(card, (0, 0), blur_sigma)
    frame[y:y + 84, x:x + 60] = card
    return frame


def selector(**overrides: object) -> FrameSelector:
    # The original design's cache rule on its own; the evidence interval has its own test.
    base = dataclasses.replace(gate_config(), sharpness_min=SHARPNESS_MIN, evidence_interval_frames=0)
    cfg: FrameSelectorConfig = dataclasses.replace(base, **overrides)  # type: ignore[arg-type]
    return FrameSelector(cfg, CROP_WH)


def tracked(x: int, y: int, track_id: int = 1, class_name: str = "card") -> list[Detection]:
    """The card drawn by frame_with_card(x, y): pixels x..x+59, so its outer edges are at x-0.5, x+59.5."""
    return [box_detection(x - 0.5, y - 0.5, track_id=track_id, class_name=class_name)]


def test_new_track_is_embedded_and_a_still_card_is_then_cached() -> None:
    sel = selector()
    frame = frame_with_card(100, 100)
    first = sel.select(frame, tracked(100, 100))
    assert [c.track_id for c in first] == [1]
    assert first[0].image_bgr.shape == (CROP_WH[1], CROP_WH[0], 3)
    for _ in range(1, 10):
        assert sel.select(frame, tracked(100, 100)) == []
    assert sel.stats.skipped[SKIP_CACHED] == 9
    assert sel.stats.crops_requested == 1 and sel.stats.detections == 10


def test_a_card_that_moved_below_the_iou_limit_is_embedded_again() -> None:
    sel = selector()
    sel.select(frame_with_card(100, 100), tracked(100, 100))
    # 60 px wide box shifted 8 px: IoU 0.76 (kept); shifted 12 px: IoU 0.67 < 0.7 (re-embedded)
    assert sel.select(frame_with_card(108, 100), tracked(108, 100)) == []
    assert len(sel.select(frame_with_card(112, 100), tracked(112, 100))) == 1


def test_cached_view_expires_after_max_age_frames() -> None:
    sel = selector()
    max_age = gate_config().cache_max_age_frames
    frame = frame_with_card(100, 100)
    counts = [len(sel.select(frame, tracked(100, 100))) for _ in range(max_age + 2)]
    assert counts[0] == 1
    assert sum(counts[1:max_age + 1]) == 0
    assert counts[max_age + 1] == 1


def test_blurry_crops_wait_and_the_sharpest_of_the_last_few_is_embedded() -> None:
    sel = selector(best_of_frames=4)
    sigmas = [3.0, 2.5, 1.8, 2.8]   # all below the sharpness threshold at this crop size
    results = [sel.select(frame_with_card(100, 100, s), tracked(100, 100)) for s in sigmas]
    assert [len(r) for r in results] == [0, 0, 0, 1]
    chosen = results[-1][0]
    sharpest = frame_with_card(100, 100, 1.8)
    expected = crop_sharpness(warp_card(sharpest, tracked(100, 100)[0].quad_px, CROP_WH))  # type: ignore[arg-type]
    assert chosen.sharpness == expected
    assert chosen.sharpness < SHARPNESS_MIN
    assert sel.stats.skipped[SKIP_BLURRY] == 3 and sel.stats.best_of_blurry == 1


def test_a_sharp_frame_after_blurry_ones_is_embedded_at_once() -> None:
    sel = selector()
    assert sel.select(frame_with_card(100, 100, 3.0), tracked(100, 100)) == []
    crops = sel.select(frame_with_card(100, 100), tracked(100, 100))
    assert len(crops) == 1 and crops[0].sharpness >= SHARPNESS_MIN


def test_settled_tracks_are_skipped_even_when_moving() -> None:
    sel = selector()
    sel.select(frame_with_card(100, 100), tracked(100, 100))
    sel.set_settled(1, True)
    for i in range(1, 6):
        x = 100 + 30 * i
        assert sel.select(frame_with_card(x, 100), tracked(x, 100)) == []
    assert sel.stats.skipped[SKIP_SETTLED] == 5
    sel.set_settled(1, False)
    assert len(sel.select(frame_with_card(300, 100), tracked(300, 100))) == 1


def test_double_feeds_are_not_embedded() -> None:
    sel = selector()
    assert sel.select(frame_with_card(100, 100), tracked(100, 100, class_name="double_feed")) == []
    assert sel.stats.skipped[SKIP_DOUBLE_FEED] == 1


def test_forget_makes_a_reused_slot_start_fresh_and_stats_count_savings() -> None:
    sel = selector()
    frame = frame_with_card(100, 100)
    for _ in range(6):
        sel.select(frame, tracked(100, 100))
    sel.forget(1)
    assert len(sel.select(frame, tracked(100, 100))) == 1
    stats = sel.stats
    assert stats.frames == 7 and stats.detections == 7 and stats.crops_requested == 2
    assert stats.saved_ratio == 1 - 2 / 7
    assert stats.reduction_factor == 3.5


def test_an_unconfirmed_still_card_gets_a_view_every_evidence_interval_until_settled() -> None:
    sel = selector(evidence_interval_frames=3)
    frame = frame_with_card(100, 100)
    counts = [len(sel.select(frame, tracked(100, 100))) for _ in range(9)]
    assert counts == [1, 0, 0, 1, 0, 0, 1, 0, 0]
    sel.set_settled(1, True)
    assert sum(len(sel.select(frame, tracked(100, 100))) for _ in range(40)) == 0, "settled: never again"
