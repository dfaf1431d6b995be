"""Open-set band thresholds chosen from a catalogue's own known-view and left-out (unknown) view statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DISTANCE_GRID_POINTS = 240   # candidate confirm_distance_max values (quantiles of both distributions)
MARGIN_GRID_POINTS = 120     # candidate confirm_margin_min values
HISTOGRAM_BINS = 60          # curves stored in the manifest: distance in [0, HISTOGRAM_MAX_DISTANCE]
HISTOGRAM_MAX_DISTANCE = 0.6


@dataclass(frozen=True)
class ViewStats:
    """Per view: best distance d0, margin to the best card of a different art, truth card, best card."""

    distance_cos: np.ndarray      # (N,) float
    margin_other: np.ndarray      # (N,) float (inf without a runner-up)
    truth: Sequence[str]          # the card the view was made from
    best: Sequence[str]           # the nearest card (its art group compared with the truth's)
    correct: np.ndarray           # (N,) bool: best card is of the truth's art group (known views only)
    nuisance: Sequence[str]

    def __post_init__(self) -> None:
        n = len(self.distance_cos)
        if not (len(self.margin_other) == len(self.truth) == len(self.best) == len(self.correct)
                == len(self.nuisance) == n):
            raise ValueError("ViewStats arrays must all have the same length")


@dataclass(frozen=True)
class Thresholds:
    confirm_distance_max: float
    confirm_margin_min: float
    uncertain_distance_max: float


def _accepts(stats: ViewStats, d_max: float, m_min: float) -> np.ndarray:
    return (stats.distance_cos <= d_max) & (stats.margin_other >= m_min)


def choose_thresholds(known: ViewStats, unknown: ViewStats, target_false_accept: float,
                      known_unknown_rate: float) -> Thresholds:
    """The (distance, margin) pair confirming the most known views correctly while at most
    ``target_false_accept`` of unknown views (and of known views as a wrong card) are confirmed.

    uncertain_distance_max: the known-view distance quantile 1 − known_unknown_rate (a known card
    lands in UNKNOWN that rarely), never below confirm_distance_max.
    """
    if len(known.distance_cos) == 0 or len(unknown.distance_cos) == 0:
        raise ValueError("calibration needs known and unknown views")
    dk, mk = known.distance_cos, known.margin_other
    du = unknown.distance_cos
    qs = np.linspace(0.0, 1.0, DISTANCE_GRID_POINTS)
    d_grid = np.unique(np.concatenate([np.quantile(dk, qs), np.quantile(du, qs)]))
    finite_m = np.concatenate([mk[np.isfinite(mk)], unknown.margin_other[np.isfinite(unknown.margin_other)]])
    m_grid = np.unique(np.concatenate([[0.0], np.quantile(finite_m, np.linspace(0, 1, MARGIN_GRID_POINTS))
                                       if len(finite_m) else []]))
    best: tuple[float, float, float, float] | None = None   # (true accepts, -false accepts, d, m)
    nu, nk = len(du), len(dk)
    for m in m_grid:   # per margin: accepted views with d <= D counted by searchsorted over sorted distances
        fa = np.searchsorted(np.sort(du[unknown.margin_other >= m]), d_grid, side="right") / nu
        keep = mk >= m
        right = np.searchsorted(np.sort(dk[keep & known.correct]), d_grid, side="right") / nk
        wrong = np.searchsorted(np.sort(dk[keep & ~known.correct]), d_grid, side="right") / nk
        ok = (fa <= target_false_accept) & (wrong <= target_false_accept)
        for j in np.flatnonzero(ok):
            key = (float(right[j]), -float(fa[j]), float(d_grid[j]), float(m))
            if best is None or key[:2] > best[:2]:
                best = key
    if best is None:   # nothing meets the target: confirm nothing (distance 0, margin above any seen)
        d_conf, m_conf = 0.0, float(np.max(finite_m, initial=0.0)) + 1e-6
    else:
        d_conf, m_conf = best[2], best[3]
    d_unknown = max(d_conf, float(np.quantile(dk, 1.0 - known_unknown_rate)))
    return Thresholds(round(d_conf, 6), round(m_conf, 6), round(min(d_unknown, 2.0), 6))


def view_rates(known: ViewStats, unknown: ViewStats, t: Thresholds) -> dict[str, float]:
    """Per-view rates at thresholds ``t`` (confirm test as the matcher's, art margin aside)."""
    acc_k = _accepts(known, t.confirm_distance_max, t.confirm_margin_min)
    return {
        "unknown_false_accept": float(_accepts(unknown, t.confirm_distance_max, t.confirm_margin_min).mean()),
        "unknown_banded_unknown": float((unknown.distance_cos > t.uncertain_distance_max).mean()),
        "known_confirmed_right": float((acc_k & known.correct).mean()),
        "known_confirmed_wrong": float((acc_k & ~known.correct).mean()),
        "known_banded_unknown": float((known.distance_cos > t.uncertain_distance_max).mean()),
        "known_top1": float(known.correct.mean()),
    }


def card_rates(known: ViewStats, unknown: ViewStats, t: Thresholds, agreeing_views: int) -> dict[str, float]:
    """Per card after the smoother: a card is confirmed as X when ``agreeing_views`` of its views are
    confirmed as X (the views of one card are its augmented renders: correlated, as on the belt)."""
    def confirmed_as(stats: ViewStats) -> dict[str, str | None]:
        acc = _accepts(stats, t.confirm_distance_max, t.confirm_margin_min)
        votes: dict[str, dict[str, int]] = {}
        for i, truth in enumerate(stats.truth):
            per = votes.setdefault(truth, {})
            if acc[i]:
                per[stats.best[i]] = per.get(stats.best[i], 0) + 1
        out: dict[str, str | None] = {}
        for truth, per in votes.items():
            winner = max(per.items(), key=lambda kv: kv[1], default=(None, 0))
            out[truth] = winner[0] if winner[1] >= agreeing_views else None
        return out

    unk = confirmed_as(unknown)
    kn = confirmed_as(known)
    right_pairs = {(known.truth[i], known.best[i]) for i in range(len(known.truth)) if known.correct[i]}
    right = sum(v is not None and (c, v) in right_pairs for c, v in kn.items())
    wrong = sum(v is not None and (c, v) not in right_pairs for c, v in kn.items())
    n_k = max(len(kn), 1)
    return {
        "unknown_false_accept": sum(v is not None for v in unk.values()) / max(len(unk), 1),
        "known_confirmed_right": right / n_k,
        "known_confirmed_wrong": wrong / n_k,
        "known_not_confirmed": sum(v is None for v in kn.values()) / n_k,
        "unknown_cards": len(unk),
        "known_cards": len(kn),
        "views_per_card": round(len(unknown.truth) / max(len(unk), 1), 3),
    }


def independent_card_false_accept(per_view: float, views_per_card: float, agreeing_views: int) -> float:
    """P(at least ``agreeing_views`` of the views confirmed) if views were independent: a lower bound
    the correlated measurement above is compared with."""
    n = round(views_per_card)
    if n < agreeing_views:
        return 0.0
    return float(sum(math.comb(n, j) * per_view ** j * (1 - per_view) ** (n - j) for j in range(agreeing_views, n + 1)))


def curves(known: ViewStats, unknown: ViewStats, t: Thresholds) -> dict[str, Any]:
    """Histograms of best distance (known / unknown) and per-view rates against confirm_distance_max
    at the chosen margin: what `db check --report` plots."""
    edges = np.linspace(0.0, HISTOGRAM_MAX_DISTANCE, HISTOGRAM_BINS + 1)
    hk, _ = np.histogram(np.clip(known.distance_cos, 0, HISTOGRAM_MAX_DISTANCE), edges)
    hu, _ = np.histogram(np.clip(unknown.distance_cos, 0, HISTOGRAM_MAX_DISTANCE), edges)
    far = [float(_accepts(unknown, d, t.confirm_margin_min).mean()) for d in edges[1:]]
    tar = [float((_accepts(known, d, t.confirm_margin_min) & known.correct).mean()) for d in edges[1:]]
    mk = np.where(np.isfinite(known.margin_other), known.margin_other, HISTOGRAM_MAX_DISTANCE)
    mu = np.where(np.isfinite(unknown.margin_other), unknown.margin_other, HISTOGRAM_MAX_DISTANCE)
    medges = np.linspace(0.0, 0.3, 31)
    return {
        "distance_edges": [round(float(e), 4) for e in edges],
        "known_distance_hist": hk.tolist(), "unknown_distance_hist": hu.tolist(),
        "false_accept_at_distance": [round(v, 5) for v in far],
        "true_accept_at_distance": [round(v, 5) for v in tar],
        "margin_edges": [round(float(e), 4) for e in medges],
        "known_margin_hist": np.histogram(np.clip(mk, 0, 0.3), medges)[0].tolist(),
        "unknown_margin_hist": np.histogram(np.clip(mu, 0, 0.3), medges)[0].tolist(),
    }


def per_nuisance(known: ViewStats, unknown: ViewStats, t: Thresholds) -> dict[str, dict[str, float]]:
    """Top-1 and confirm rates of known views, false accepts of unknown views, per nuisance."""
    out: dict[str, dict[str, float]] = {}
    names = sorted(set(known.nuisance) | set(unknown.nuisance))
    acc_k = _accepts(known, t.confirm_distance_max, t.confirm_margin_min)
    acc_u = _accepts(unknown, t.confirm_distance_max, t.confirm_margin_min)
    kn = np.asarray(known.nuisance)
    un = np.asarray(unknown.nuisance)
    for name in names:
        row: dict[str, float] = {}
        mk = kn == name
        if mk.any():
            row["known_top1"] = round(float(known.correct[mk].mean()), 4)
            row["known_confirmed_right"] = round(float((acc_k & known.correct)[mk].mean()), 4)
            row["known_views"] = int(mk.sum())
        mu = un == name
        if mu.any():
            row["unknown_false_accept"] = round(float(acc_u[mu].mean()), 4)
            row["unknown_views"] = int(mu.sum())
        out[name] = row
    return out


def bands_from_calibration(calibration: Mapping[str, Any] | None) -> Thresholds | None:
    """The thresholds a database manifest's calibration carries, or None when it has none usable."""
    if not calibration or not calibration.get("usable", False):
        return None
    try:
        b = calibration["bands"]
        return Thresholds(float(b["confirm_distance_max"]), float(b["confirm_margin_min"]),
                          float(b["uncertain_distance_max"]))
    except (KeyError, TypeError, ValueError):
        return None
