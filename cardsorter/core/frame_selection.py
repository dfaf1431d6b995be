"""Detection-gated frame selection: embed a track only when the embedding can add information.

The original design (recognition_system_plan.md, "Frame Selection Logic"): a track is embedded
when it is new, when it moved beyond an IoU of 0.7 against the cached view, or when the cached
view is older than 30 frames; a crop whose variance of the Laplacian is below a threshold waits
for a sharper frame, and the sharpest of the last few is used if no sharp one comes. A track the
smoother has settled (confirmed / final) needs no more evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cardsorter.core.detection import CLASS_DOUBLE_FEED
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.types import BoxPx, CardCrop, Detection
from cardsorter.core.warp import check_bgr_image, laplacian_sharpness, warp_card

SKIP_CACHED = "cached"
SKIP_SETTLED = "settled"
SKIP_BLURRY = "blurry"
SKIP_NO_QUAD = "no_quad"
SKIP_DOUBLE_FEED = "double_feed"
SKIP_REASONS = (SKIP_CACHED, SKIP_SETTLED, SKIP_BLURRY, SKIP_NO_QUAD, SKIP_DOUBLE_FEED)
SHARPNESS_INSET_FRAC = 0.05
"""Sharpness is measured inside this margin of the crop: a corner a fraction of a pixel off puts a
sliver of belt on the crop's edge, whose step would otherwise dominate the Laplacian variance."""


@dataclass(frozen=True)
class FrameSelectorConfig:
    iou_moved_max: float = doc("re-embed a track when the IoU of its box with the cached view falls below this",
                                lo=0.0, hi=1.0)
    cache_max_age_frames: int = doc("a cached view is reused for at most this many frames after it was embedded",
                                     lo=0)
    evidence_interval_frames: int = doc(
        "a track the smoother has not confirmed yet gets a fresh view after this many frames even when it "
        "stands still (confirmation needs views from distinct frames); 0 = only cache_max_age_frames", lo=0)
    sharpness_min: float = doc("variance of the Laplacian of the warped crop below which the crop waits", lo=0.0)
    best_of_frames: int = doc("after this many blurry candidates in a row, the sharpest of them is embedded",
                              lo=1)
    skip_double_feed: bool = doc("never embed detections flagged as two overlapping cards (they go to reject)")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class SelectionStats:
    """Counters since start; 'every card every frame' would embed every detection."""

    frames: int
    detections: int
    crops_requested: int
    skipped: Mapping[str, int] = field(default_factory=dict)
    best_of_blurry: int = 0

    @property
    def saved_ratio(self) -> float:
        """Share of embedding runs saved against embedding every detection of every frame."""
        return 1.0 - self.crops_requested / self.detections if self.detections else 0.0

    @property
    def reduction_factor(self) -> float:
        """Detections per embedding run (the original design claims 6x)."""
        return self.detections / self.crops_requested if self.crops_requested else float("inf")


@dataclass
class _TrackGate:
    cached_box: BoxPx | None = None
    cached_frame: int = 0
    settled: bool = False
    last_seen_frame: int = 0
    pending: list[CardCrop] = field(default_factory=list)


def crop_sharpness(crop_bgr: np.ndarray) -> float:
    """Variance of the Laplacian inside the crop's inset (see SHARPNESS_INSET_FRAC)."""
    h, w = crop_bgr.shape[:2]
    mx, my = max(1, round(SHARPNESS_INSET_FRAC * w)), max(1, round(SHARPNESS_INSET_FRAC * h))
    return laplacian_sharpness(crop_bgr[my:h - my, mx:w - mx])


class FrameSelector:
    """Per-frame decision of which tracked cards to crop, warp and send to the embedder."""

    def __init__(self, config: FrameSelectorConfig, crop_size_wh: tuple[int, int]) -> None:
        if crop_size_wh[0] < 8 or crop_size_wh[1] < 8:
            raise ValueError(f"crop size must be at least 8x8, got {crop_size_wh}")
        self._cfg = config
        self._size = (int(crop_size_wh[0]), int(crop_size_wh[1]))
        self._gates: dict[int, _TrackGate] = {}
        self._frame = 0
        self._detections = 0
        self._requested = 0
        self._best_of_blurry = 0
        self._skipped = dict.fromkeys(SKIP_REASONS, 0)

    def select(self, image_bgr: np.ndarray, tracked: list[Detection]) -> list[CardCrop]:
        """The crops to embed for this frame (at most one per track)."""
        check_bgr_image(image_bgr, "frame")
        cfg = self._cfg
        self._frame += 1
        crops: list[CardCrop] = []
        for det in tracked:
            if det.track_id < 0:
                raise ValueError(f"frame selector needs tracked detections, got track_id {det.track_id}")
            self._detections += 1
            gate = self._gates.setdefault(det.track_id, _TrackGate())
            gate.last_seen_frame = self._frame
            reason = self._skip_reason(gate, det)
            if reason is not None:
                self._skipped[reason] += 1
                continue
            assert det.quad_px is not None
            image = warp_card(image_bgr, det.quad_px, self._size)
            crop = CardCrop(det.track_id, image, crop_sharpness(image), det.bbox_px, det.quad_px)
            if crop.sharpness < cfg.sharpness_min:
                gate.pending.append(crop)
                if len(gate.pending) < cfg.best_of_frames:
                    self._skipped[SKIP_BLURRY] += 1
                    continue
                crop = max(gate.pending, key=lambda c: c.sharpness)
                self._best_of_blurry += 1
            gate.pending.clear()
            gate.cached_box = det.bbox_px
            gate.cached_frame = self._frame
            crops.append(crop)
        self._requested += len(crops)
        self._prune()
        return crops

    def reconfigure(self, config: FrameSelectorConfig) -> None:
        """New gate settings from the next frame on (a runtime parameter change)."""
        self._cfg = config

    def set_settled(self, track_id: int, settled: bool) -> None:
        """Feedback from the smoother: a settled (confirmed / final) track needs no more views."""
        self._gates.setdefault(track_id, _TrackGate(last_seen_frame=self._frame)).settled = settled

    def forget(self, track_id: int) -> None:
        """The track ended: drop its cache and buffered crops."""
        self._gates.pop(track_id, None)

    @property
    def stats(self) -> SelectionStats:
        return SelectionStats(self._frame, self._detections, self._requested, dict(self._skipped),
                              self._best_of_blurry)

    def _skip_reason(self, gate: _TrackGate, det: Detection) -> str | None:
        cfg = self._cfg
        if det.class_name == CLASS_DOUBLE_FEED and cfg.skip_double_feed:
            return SKIP_DOUBLE_FEED
        if gate.settled:
            return SKIP_SETTLED
        if gate.cached_box is not None:
            max_age = cfg.cache_max_age_frames
            if cfg.evidence_interval_frames > 0:   # not settled (checked above): it still needs evidence
                max_age = min(max_age, cfg.evidence_interval_frames - 1)
            fresh = self._frame - gate.cached_frame <= max_age
            if fresh and det.bbox_px.iou(gate.cached_box) >= cfg.iou_moved_max:
                return SKIP_CACHED
        if det.quad_px is None:
            return SKIP_NO_QUAD
        return None

    def _prune(self) -> None:
        """Drop the state of tracks unseen for longer than a cache lifetime (their end was missed)."""
        horizon = self._frame - max(self._cfg.cache_max_age_frames, self._cfg.best_of_frames) - 1
        for track_id in [t for t, g in self._gates.items() if g.last_seen_frame < horizon]:
            del self._gates[track_id]
