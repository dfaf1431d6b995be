"""Input checks (core.validation): each malformed value gets a reason; stamps beyond the horizon are never adopted."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cardsorter.core.errors import ConfigError
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.smoothing import SmootherConfig
from cardsorter.core.types import MatchBand, TrackState
from cardsorter.core.validation import (
    StampGuard,
    detection_problem,
    embedding_batch_problem,
    identity_problem,
    match_problem,
    track_end_problem,
    vector_problem,
)
from cardsorter.settings import build, load_settings

S = 1_000_000_000
T0 = 1_700_000_000 * S
FRAME = S // 30


def unit(dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


# --- stamps ---------------------------------------------------------------------------------------

def test_a_stamp_an_hour_ahead_is_refused_and_the_clock_stays() -> None:
    guard = StampGuard(5 * S, rebase_after=30)
    for i in range(10):
        assert guard.check(T0 + i * FRAME) is None
    reason = guard.check(T0 + 3600 * S)
    assert reason is not None and "ahead" in reason and "3599.7 s" in reason
    assert guard.last_good_ns == T0 + 9 * FRAME
    assert guard.check(T0 + 10 * FRAME) is None, "the stream goes on as if nothing happened"
    assert guard.last_good_ns == T0 + 10 * FRAME


def test_slightly_older_stamps_are_good_but_do_not_move_the_clock_back() -> None:
    guard = StampGuard(5 * S, rebase_after=30)
    assert guard.check(T0 + S) is None
    assert guard.check(T0) is None              # a late track end, an identity of an earlier frame
    assert guard.last_good_ns == T0 + S


def test_a_stamp_far_behind_is_refused() -> None:
    guard = StampGuard(5 * S, rebase_after=30)
    guard.check(T0)
    reason = guard.check(T0 - 60 * S)
    assert reason is not None and "behind" in reason


def test_a_real_clock_jump_is_adopted_after_enough_consecutive_agreeing_stamps() -> None:
    guard = StampGuard(5 * S, rebase_after=5)
    guard.check(T0)
    jumped = T0 + 3600 * S
    results = [guard.check(jumped + i * FRAME) for i in range(5)]
    assert all(r is not None for r in results[:4]) and results[4] is None
    assert guard.rebased == 1 and guard.last_good_ns == jumped + 4 * FRAME


def test_good_stamps_in_between_keep_repeated_bad_ones_from_being_adopted() -> None:
    guard = StampGuard(5 * S, rebase_after=3)
    for i in range(20):
        assert guard.check(T0 + i * FRAME) is None
        assert guard.check(T0 + 3600 * S + i * FRAME) is not None
    assert guard.rebased == 0


def test_a_hostile_first_stamp_is_left_behind_by_the_real_stream() -> None:
    guard = StampGuard(5 * S, rebase_after=5)
    assert guard.check(T0 + 3600 * S) is None     # nothing to compare the first stamp with
    assert [guard.check(T0 + i * FRAME) is None for i in range(5)] == [False] * 4 + [True]
    assert guard.last_good_ns == T0 + 4 * FRAME


def test_a_monotonic_guard_refuses_any_older_stamp() -> None:
    guard = StampGuard(5 * S, rebase_after=30, monotonic=True)
    guard.check(T0 + S)
    reason = guard.check(T0)
    assert reason is not None and "increasing" in reason


def test_reset_starts_a_new_stream_anywhere() -> None:
    guard = StampGuard(5 * S, rebase_after=30)
    guard.check(T0)
    guard.reset()
    assert guard.check(T0 + 7200 * S) is None


def test_negative_stamps_are_refused() -> None:
    assert StampGuard(S, 2).check(-1) is not None


# --- embeddings -------------------------------------------------------------------------------------

def test_a_batch_for_another_dimension_or_model_is_named() -> None:
    assert embedding_batch_problem("m", 768, "m", 768) is None
    assert "dimension 100" in (embedding_batch_problem("m", 100, "m", 768) or "")
    assert "model 'x'" in (embedding_batch_problem("x", 768, "m", 768) or "")


@pytest.mark.parametrize("vector, expected", [
    (unit(768), None),
    (unit(100), "100 values"),
    (np.full(768, np.nan, np.float32), "non-finite"),
    (np.concatenate([unit(767), [np.inf]]).astype(np.float32), "non-finite"),
    (np.zeros(768, np.float32), "zero vector"),
    (unit(768) * 1.5, "L2 norm 1.5"),
    (unit(768) * 0.99, "L2 norm 0.99"),
])
def test_each_bad_vector_gets_its_reason(vector: np.ndarray, expected: str | None) -> None:
    problem = vector_problem(vector.astype(np.float32), 768, 1e-3)
    assert (problem is None) if expected is None else (expected in (problem or ""))


# --- detections -------------------------------------------------------------------------------------

INSIDE_QUAD = [100.0, 100.0, 163.0, 100.0, 163.0, 188.0, 100.0, 188.0]


@pytest.mark.parametrize("bbox, quad, expected", [
    ([100, 100, 63, 88], INSIDE_QUAD, None),
    ([0, 0, 63, 88], [-3.0, 0.0, 63.0, 0.0, 63.0, 88.0, 0.0, 88.0], None),          # within the margin
    ([0, 0, 63, 88], [-30.0, 0.0, 63.0, 0.0, 63.0, 88.0, 0.0, 88.0], "corner outside"),
    ([100, 100, 63, 88], [1e30, 100.0, 163.0, 100.0, 163.0, 188.0, 100.0, 188.0], "corner outside"),
    ([100, 100, 63, 88], [-1e30, -1e30, 1e30, -1e30, 1e30, 1e30, -1e30, 1e30], "corner outside"),
    ([100, 100, 63, 88], [math.nan] * 8, "non-finite"),
    ([1e30, 100, 63, 88], None, "outside the 640x480 frame"),
    ([100, 100, -5, 88], None, "negative box size"),
    ([100, 100, 63], None, "3 values"),
])
def test_each_bad_detection_gets_its_reason(bbox: list[float], quad: list[float] | None, expected: str | None) -> None:
    problem = detection_problem(bbox, quad, 0.9, 640, 480, 4.0)
    assert (problem is None) if expected is None else (expected in (problem or "")), problem


def test_without_a_frame_size_only_finiteness_is_checked() -> None:
    assert detection_problem([1e6, 0, 10, 10], None, 0.5, None, None, 4.0) is None
    assert detection_problem([0, 0, 10, 10], None, math.nan, None, None, 4.0) is not None


# --- matches, identities, track ends -----------------------------------------------------------------

@pytest.mark.parametrize("args, expected", [
    ((1, int(MatchBand.CONFIRMED), [0.1, 0.4], 0.3), None),
    ((1, int(MatchBand.UNKNOWN), [], 2.0), None),
    ((-1, int(MatchBand.CONFIRMED), [0.1], 0.3), "track id -1"),
    ((1, 9, [0.1], 0.3), "unknown band 9"),
    ((1, int(MatchBand.CONFIRMED), [math.nan], 0.3), "non-finite"),
    ((1, int(MatchBand.CONFIRMED), [3.5], 0.3), "outside [0, 2]"),
    ((1, int(MatchBand.CONFIRMED), [0.1], math.nan), "margin"),
    ((1, int(MatchBand.CONFIRMED), [], 0.3), "without a candidate"),
])
def test_each_bad_match_gets_its_reason(args: tuple, expected: str | None) -> None:
    problem = match_problem(*args)
    assert (problem is None) if expected is None else (expected in (problem or "")), problem


@pytest.mark.parametrize("args, expected", [
    ((1, int(TrackState.CONFIRMED), True, 1.0, 3, 3), None),
    ((1, int(TrackState.DETECTING), False, 0.0, 0, 0), None),
    ((1, 42, True, 1.0, 3, 3), "unknown state 42"),
    ((1, int(TrackState.CONFIRMED), False, 1.0, 3, 3), "without a card"),
    ((1, int(TrackState.CONFIRMED), True, math.nan, 3, 3), "confidence"),
    ((1, int(TrackState.CONFIRMED), True, 1.0, 4, 3), "4 agreeing of 3"),
    ((-2, int(TrackState.CONFIRMED), True, 1.0, 3, 3), "track id -2"),
])
def test_each_bad_identity_gets_its_reason(args: tuple, expected: str | None) -> None:
    problem = identity_problem(*args)
    assert (problem is None) if expected is None else (expected in (problem or "")), problem


@pytest.mark.parametrize("args, expected", [
    ((1, T0, T0 + S, 10, [0, 0, 60, 80], [300.0, 0.0]), None),
    ((1, T0 + S, T0, 10, [0, 0, 60, 80], [300.0, 0.0]), "out of order"),
    ((1, T0, T0, 0, [0, 0, 60, 80], [300.0, 0.0]), "frames_seen 0"),
    ((1, T0, T0, 3, [0, 0, 60, 80], [math.inf, 0.0]), "non-finite"),
    ((1, T0, T0, 3, [0, 0, 60], [0.0, 0.0]), "3 values"),
])
def test_each_bad_track_end_gets_its_reason(args: tuple, expected: str | None) -> None:
    problem = track_end_problem(*args)
    assert (problem is None) if expected is None else (expected in (problem or "")), problem


# --- ranges from the field definitions ---------------------------------------------------------------

def test_a_declared_range_is_checked_with_the_field_named() -> None:
    @dataclasses.dataclass(frozen=True)
    class Gate:
        iou: float = doc("iou", lo=0.0, hi=1.0)
        views: int = doc("views", lo=1)

        def __post_init__(self) -> None:
            check_ranges(self)

    assert Gate(0.5, 3) == Gate(0.5, 3)
    with pytest.raises(ValueError, match=r"iou must be in \[0.0, 1.0\], got 1.5"):
        Gate(1.5, 3)
    with pytest.raises(ValueError, match=r"views must be in \[1, inf\], got 0"):
        Gate(0.5, 0)


def test_config_ranges_reach_the_settings_builder_with_the_parameter_named() -> None:
    params = {"confirm_views": -5, "unknown_views": 3, "ambiguous_views": 2, "flip_views": 4, "finalize_on_confirm": False}
    with pytest.raises(ConfigError, match="confirm_views must be in"):
        build(SmootherConfig, params)


def test_the_shipped_input_checks_are_valid() -> None:
    cfg = load_settings().sorter.input
    assert cfg.stamp_horizon_ns > 0 and cfg.stamp_rebase_messages >= 2
