"""The web benchmark's interval for the added p95 says when a run cannot decide the < 5 % goal."""

from __future__ import annotations

import numpy as np

from cardsorter.bench.web import added_p95_interval


def _rounds(centre: float, spread: float, rounds: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(rng.normal(centre * (1 + spread * rng.standard_normal()), 5.0, 40)) for _ in range(rounds)]


def test_a_clear_slowdown_gives_an_interval_above_zero_and_no_change_one_around_zero() -> None:
    base = _rounds(100.0, 0.02, 8, seed=1)
    slower = _rounds(150.0, 0.02, 8, seed=2)
    same = _rounds(100.0, 0.02, 8, seed=3)
    ci = added_p95_interval(base, slower)
    assert ci["low_pct"] > 30 and ci["high_pct"] < 70
    ci = added_p95_interval(base, same)
    assert -10 < ci["low_pct"] < 3 and -3 < ci["high_pct"] < 10    # near zero, as the runs were alike


def test_noisy_rounds_give_a_wide_interval() -> None:
    calm = added_p95_interval(_rounds(100.0, 0.02, 6, 4), _rounds(100.0, 0.02, 6, 5))
    noisy = added_p95_interval(_rounds(100.0, 0.4, 6, 4), _rounds(100.0, 0.4, 6, 5))
    assert noisy["high_pct"] - noisy["low_pct"] > 3 * (calm["high_pct"] - calm["low_pct"])


def test_no_samples_give_no_interval() -> None:
    assert added_p95_interval([], [[1.0]])["low_pct"] is None
    assert added_p95_interval([[]], [[1.0]])["low_pct"] is None
