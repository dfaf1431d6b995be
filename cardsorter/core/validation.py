"""Input checks: why a received value cannot be used (a reason string), or None when it can."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.finish import FOIL_CLASSES, UNKNOWN
from cardsorter.core.types import MatchBand, TrackState

NS_PER_S = 1_000_000_000
COSINE_DISTANCE_SLACK = 1e-3
"""Cosine distances of unit float32 vectors lie in [0, 2]; float32 dot products of 768-d unit
vectors overshoot by ~1e-6, so anything more than this outside [0, 2] was not computed by a matcher."""
_BAND_VALUES = frozenset(int(b) for b in MatchBand)
_STATE_VALUES = frozenset(int(s) for s in TrackState)


@dataclass(frozen=True)
class InputChecksConfig:
    """What a node accepts from its subscriptions; everything else is counted and dropped."""

    stamp_horizon_s: float = doc(
        "a stamp more than this far from the last good stamp (ahead or behind) is dropped, never adopted", lo=0.001)
    stamp_rebase_messages: int = doc(
        "this many consecutive messages that agree on a new time (each within the horizon of the one "
        "before) are a real clock jump, which is adopted with a warning", lo=2)
    norm_tolerance: float = doc("embeddings: |L2 norm - 1| above this is dropped as not normalised", lo=0.0, hi=1.0)
    corner_margin_px: float = doc(
        "detections: corners and boxes may reach this far outside the frame (sub-pixel corner fits); "
        "farther is dropped", lo=0.0)

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def stamp_horizon_ns(self) -> int:
        return int(self.stamp_horizon_s * NS_PER_S)


class StampGuard:
    """The newest good stamp of one node's data clock; stamps far from it are refused, never adopted.

    A stamp within ``horizon_ns`` of the last good one is good (the last good stamp only moves
    forward; with ``monotonic`` an older stamp is refused too). A stamp farther away is refused and
    does not move the clock, unless ``rebase_after`` consecutive refused stamps agree with each
    other (each within the horizon after the previous one): then the clock really jumped (a camera
    restart, an NTP step on a Pi without a real-time clock) and the newest of them is adopted
    (``rebased`` counts these; a monotonic stage must then restart what depends on stamp order).
    """

    def __init__(self, horizon_ns: int, rebase_after: int, monotonic: bool = False) -> None:
        if horizon_ns <= 0 or rebase_after < 2:
            raise ValueError(f"need horizon_ns > 0 and rebase_after >= 2, got {horizon_ns}, {rebase_after}")
        self._horizon_ns = horizon_ns
        self._rebase_after = rebase_after
        self._monotonic = monotonic
        self._last_ns: int | None = None
        self._jump_last_ns: int | None = None
        self._jump_count = 0
        self.rebased = 0

    @property
    def last_good_ns(self) -> int | None:
        return self._last_ns

    def reset(self) -> None:
        """Forget the clock (a new stream starts): the next stamp is good whatever it is."""
        self._last_ns, self._jump_last_ns, self._jump_count = None, None, 0

    def check(self, stamp_ns: int) -> str | None:
        """None when ``stamp_ns`` is good (the clock moves to it if newer), else why it is refused."""
        if stamp_ns < 0:
            return f"negative stamp {stamp_ns}"
        if self._last_ns is None:
            self._last_ns = stamp_ns
            return None
        delta = stamp_ns - self._last_ns
        if abs(delta) <= self._horizon_ns:
            if self._monotonic and delta < 0:
                return (f"stamp {stamp_ns} is {-delta / NS_PER_S:.3f} s before the last good stamp "
                        f"{self._last_ns} (this stage needs increasing stamps)")
            self._last_ns = max(self._last_ns, stamp_ns)
            self._jump_last_ns, self._jump_count = None, 0
            return None
        follows = self._jump_last_ns is not None and 0 <= stamp_ns - self._jump_last_ns <= self._horizon_ns
        self._jump_count = self._jump_count + 1 if follows else 1
        self._jump_last_ns = stamp_ns
        if self._jump_count >= self._rebase_after:
            self._last_ns = self._jump_last_ns
            self._jump_last_ns, self._jump_count = None, 0
            self.rebased += 1
            return None
        side = "ahead of" if delta > 0 else "behind"
        return (f"stamp {stamp_ns} is {abs(delta) / NS_PER_S:.1f} s {side} the last good stamp {self._last_ns} "
                f"(horizon {self._horizon_ns / NS_PER_S:g} s)")


# --- embeddings -------------------------------------------------------------------------------

def embedding_batch_problem(model_id: str, dimension: int, expected_model_id: str,
                            expected_dimension: int) -> str | None:
    """Why a whole embeddings message cannot be searched in a database of that model and dimension."""
    if model_id != expected_model_id:
        return f"model '{model_id}' but the database was built with '{expected_model_id}'"
    if dimension != expected_dimension:
        return f"dimension {dimension} but the database has dimension {expected_dimension}"
    return None


def vector_problem(vector: np.ndarray, dimension: int, norm_tolerance: float) -> str | None:
    """Why one embedding is unusable: wrong shape, NaN/Inf, zero, or not L2-normalised."""
    if vector.ndim != 1 or vector.shape[0] != dimension:
        return f"{vector.size} values, expected {dimension}"
    if not np.all(np.isfinite(vector)):
        return "non-finite values (NaN or Inf)"
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if norm == 0.0:
        return "zero vector"
    if abs(norm - 1.0) > norm_tolerance:
        return f"L2 norm {norm:.4g}, not 1 within {norm_tolerance:g}"
    return None


# --- detections -------------------------------------------------------------------------------

def _outside(values: Sequence[float], limit: float, margin: float) -> bool:
    return any(v < -margin or v > limit + margin for v in values)


def detection_problem(bbox: Sequence[float], quad: Sequence[float] | None, score: float,
                      width_px: int | None, height_px: int | None, margin_px: float) -> str | None:
    """Why a detection is unusable: a non-finite or negative box, a non-finite score, corners or
    box outside the frame by more than ``margin_px`` (frame size None: only finiteness is checked)."""
    if len(bbox) != 4:
        return f"bbox has {len(bbox)} values, expected 4"
    if quad is not None and len(quad) != 8:
        return f"quad has {len(quad)} values, expected 8"
    values = [*bbox, *(quad or ())]
    if not all(math.isfinite(v) for v in values):
        return "non-finite box or corner coordinates"
    if not math.isfinite(score):
        return f"non-finite score {score}"
    x, y, w, h = bbox
    if w < 0 or h < 0:
        return f"negative box size {w}x{h}"
    if width_px is None or height_px is None:
        return None
    if _outside([x, x + w], width_px, margin_px) or _outside([y, y + h], height_px, margin_px):
        return f"box {x:.1f},{y:.1f} {w:.1f}x{h:.1f} outside the {width_px}x{height_px} frame"
    if quad is not None and (_outside(quad[0::2], width_px, margin_px) or _outside(quad[1::2], height_px, margin_px)):
        return f"corner outside the {width_px}x{height_px} frame (margin {margin_px:g} px)"
    return None


def track_id_problem(track_id: int, tracked: bool = True) -> str | None:
    if tracked and track_id < 0:
        return f"track id {track_id} (tracked data needs an id >= 0)"
    return None


# --- matches, identities, track ends ----------------------------------------------------------

def distance_problem(distance_cos: float, what: str = "distance") -> str | None:
    if not math.isfinite(distance_cos):
        return f"non-finite {what} {distance_cos}"
    if not -COSINE_DISTANCE_SLACK <= distance_cos <= 2.0 + COSINE_DISTANCE_SLACK:
        return f"{what} {distance_cos:g} outside [0, 2]"
    return None


def match_problem(track_id: int, band: int, candidate_distances: Sequence[float], margin: float) -> str | None:
    """Why one track's match cannot be a view: bad track id, unknown band, bad distances."""
    problem = track_id_problem(track_id)
    if problem:
        return problem
    if band not in _BAND_VALUES:
        return f"unknown band {band}"
    for d in candidate_distances:
        problem = distance_problem(d, "candidate distance")
        if problem:
            return problem
    if math.isnan(margin) or margin < -COSINE_DISTANCE_SLACK:
        return f"margin {margin} (must be >= 0)"
    if band != int(MatchBand.UNKNOWN) and not candidate_distances:
        return f"band {MatchBand(band).name} without a candidate"
    return None


def identity_problem(track_id: int, state: int, has_card: bool, confidence: float, agreeing_views: int,
                     views: int) -> str | None:
    """Why an identity is unusable: bad track id, unknown state, a confirmation without a card,
    confidence outside [0, 1], view counts that do not add up."""
    problem = track_id_problem(track_id)
    if problem:
        return problem
    if state not in _STATE_VALUES:
        return f"unknown state {state}"
    if state in (int(TrackState.CONFIRMED), int(TrackState.AMBIGUOUS)) and not has_card:
        return f"state {TrackState(state).name} without a card"
    if not (math.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        return f"confidence {confidence} outside [0, 1]"
    if not 0 <= agreeing_views <= views:
        return f"{agreeing_views} agreeing of {views} views"
    return None


def track_end_problem(track_id: int, first_stamp_ns: int, last_stamp_ns: int, frames_seen: int,
                      bbox: Sequence[float], velocity: Sequence[float]) -> str | None:
    """Why a track end is unusable: bad id, stamps out of order, no frames, non-finite geometry."""
    problem = track_id_problem(track_id)
    if problem:
        return problem
    if first_stamp_ns < 0 or last_stamp_ns < first_stamp_ns:
        return f"stamps {first_stamp_ns} .. {last_stamp_ns} out of order"
    if frames_seen < 1:
        return f"frames_seen {frames_seen} (must be >= 1)"
    if len(bbox) != 4 or len(velocity) != 2:
        return f"last_bbox_px has {len(bbox)} values and velocity {len(velocity)}, expected 4 and 2"
    if not all(math.isfinite(v) for v in (*bbox, *velocity)):
        return "non-finite box or velocity"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"negative box size {bbox[2]}x{bbox[3]}"
    return None


READING_FINISHES = ("", *FOIL_CLASSES, UNKNOWN)   # PrintingReading.finish ("": no closeups compared)
READING_LINES_MAX = 64          # lines of one closeup's reading (the reader returns a handful)
READING_LINE_CHARS_MAX = 256


def reading_problem(track_id: int, lines: Sequence[str], confidences: Sequence[float], finish: str = "") -> str | None:
    """Why a printing reading is unusable: bad track id, lines and confidences that do not pair up, too
    many or too long lines, a confidence outside [0, 1], a finish core/finish.py does not name."""
    problem = track_id_problem(track_id)
    if problem:
        return problem
    if finish not in READING_FINISHES:
        return f"finish {finish[:32]!r} (one of {', '.join(repr(f) for f in READING_FINISHES)} expected)"
    if len(lines) != len(confidences):
        return f"{len(lines)} lines but {len(confidences)} confidences"
    if len(lines) > READING_LINES_MAX:
        return f"{len(lines)} lines (at most {READING_LINES_MAX})"
    for text, conf in zip(lines, confidences, strict=True):
        if len(text) > READING_LINE_CHARS_MAX:
            return f"a line of {len(text)} characters (at most {READING_LINE_CHARS_MAX})"
        if not 0.0 <= conf <= 1.0:     # NaN fails too
            return f"line confidence {conf} (must be 0..1)"
    return None


def closeup_request_problem(track_id: int, quad: Sequence[float], card_height_px: int, width_px: int,
                            height_px: int, margin_px: float, height_max_px: int) -> str | None:
    """Why the camera cannot cut a requested closeup: bad track id, corners outside the frame (by more than
    the margin) or non-finite, a degenerate quad, a height outside 64..height_max_px."""
    problem = track_id_problem(track_id)
    if problem:
        return problem
    if not 64 <= card_height_px <= height_max_px:
        return f"card height {card_height_px} px (must be 64..{height_max_px})"
    if len(quad) != 8 or not all(math.isfinite(v) for v in quad):
        return f"quad {list(quad)} (8 finite corner coordinates expected)"
    if _outside(quad[0::2], width_px, margin_px) or _outside(quad[1::2], height_px, margin_px):
        return f"quad {[round(v, 1) for v in quad]} outside the {width_px}x{height_px} frame"
    xs, ys = quad[0::2], quad[1::2]
    area = 0.5 * abs(sum(xs[i] * ys[(i + 1) % 4] - xs[(i + 1) % 4] * ys[i] for i in range(4)))
    if area < 16.0:
        return f"quad of {area:.1f} px² (degenerate)"
    return None
