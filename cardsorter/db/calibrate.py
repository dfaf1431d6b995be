"""Per-database open-set calibration: augmented views of the references (known) and left-out cards (unknown)."""

from __future__ import annotations

import hashlib
import logging
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cardsorter.backends.card_index import exact_top_rows
from cardsorter.backends.embedders import Embedder
from cardsorter.core.calibration import (
    ViewStats,
    card_rates,
    choose_thresholds,
    curves,
    independent_card_false_accept,
    per_nuisance,
    view_rates,
)
from cardsorter.core.errors import DatabaseError
from cardsorter.core.matching import group_templates
from cardsorter.db.errors import FormatError

LOG = logging.getLogger(__name__)

VIEWS_FILE = "calibration_views.npz"
WORK_SCALE = 2          # nuisances are applied at 2x the model input, then resized down like a camera crop
CANDIDATE_CARDS = 5     # distinct cards per view (as the matcher's k)
QUERY_CHUNK = 512
CLEAN = "clean"

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CalibrationSettings:
    """The build.calibration_* parameters (see config/sorter.yaml)."""

    target_false_accept: float
    known_unknown_rate: float
    nuisances: tuple[str, ...]
    cards_max: int
    cards_min: int
    folds: int
    agreeing_views: int
    seed: int = 0


@dataclass(frozen=True)
class CalibrationViews:
    """Embedded augmented views of some references: vectors (N, D) float32, the card and nuisance of each."""

    vectors: np.ndarray
    truth: list[str]
    nuisance: list[str]

    def __len__(self) -> int:
        return len(self.truth)

    def concat(self, other: CalibrationViews) -> CalibrationViews:
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        return CalibrationViews(np.concatenate([self.vectors, other.vectors]), self.truth + other.truth,
                                self.nuisance + other.nuisance)


def empty_views(dimension: int) -> CalibrationViews:
    return CalibrationViews(np.zeros((0, dimension), np.float32), [], [])


def _stable_order(card_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{card_id}".encode()).hexdigest()


def select_cards(card_ids: Sequence[str], cards_max: int, seed: int) -> list[str]:
    """At most ``cards_max`` cards, a deterministic pseudo-random sample (same catalogue → same cards)."""
    unique = sorted(set(card_ids))
    return sorted(sorted(unique, key=lambda c: _stable_order(c, seed))[:cards_max])


def render_views(images: Sequence[tuple[str, np.ndarray]], embedder: Embedder, settings: CalibrationSettings,
                 batch_size: int, progress: ProgressFn | None = None) -> CalibrationViews:
    """One view per nuisance of each (card_id, BGR reference image), embedded in batches."""
    from cardsorter.sim.augment import apply

    w, h = embedder.input_size_wh
    work = (w * WORK_SCALE, h * WORK_SCALE)
    vectors: list[np.ndarray] = []
    truth: list[str] = []
    nuisance: list[str] = []
    pending: list[tuple[str, str, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        out, ok = embedder.embed([crop for _, _, crop in pending])
        for (card, name, _), vec, good in zip(pending, out, ok):
            if good:
                vectors.append(np.asarray(vec, np.float32))
                truth.append(card)
                nuisance.append(name)
        pending.clear()

    for i, (card_id, image) in enumerate(images):
        rng = np.random.default_rng(int(_stable_order(card_id, settings.seed)[:12], 16))
        base = cv2.resize(image, work, interpolation=cv2.INTER_AREA if image.shape[1] > work[0] else cv2.INTER_LINEAR)
        for name in settings.nuisances:
            view = apply(name, base, rng)
            pending.append((card_id, name, cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA)))
            if len(pending) >= batch_size:
                flush()
        if progress is not None and (i % 16 == 15 or i == len(images) - 1):
            progress("calibration views", i + 1, len(images))
    flush()
    if not vectors:
        return empty_views(embedder.dimension)
    return CalibrationViews(np.stack(vectors), truth, nuisance)


def save_views(path: pathlib.Path, views: CalibrationViews) -> None:
    """float16 vectors (half the bytes; distances move by < 1e-3) plus each view's card and nuisance."""
    np.savez(path, vectors=views.vectors.astype(np.float16), truth=np.asarray(views.truth, dtype=str),
             nuisance=np.asarray(views.nuisance, dtype=str))


def load_views(path: pathlib.Path, dimension: int) -> CalibrationViews:
    if not path.is_file():
        return empty_views(dimension)
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors = np.asarray(data["vectors"], np.float32)
            truth = [str(t) for t in data["truth"]]
            nuisance = [str(n) for n in data["nuisance"]]
    except (OSError, KeyError, ValueError) as err:
        raise FormatError(f"cannot read calibration views {path}: {err}") from err
    if vectors.ndim != 2 or vectors.shape[1] != dimension or len(truth) != len(vectors) != len(nuisance):
        raise FormatError(f"calibration views {path}: {vectors.shape} with {len(truth)} labels, "
                          f"database dimension {dimension}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return CalibrationViews(vectors / np.maximum(norms, 1e-12), truth, nuisance)


def _stats(queries: np.ndarray, truth: Sequence[str], nuisance: Sequence[str], vectors: np.ndarray,
           row_cards: Sequence[str], art_group_of: Callable[[str], str], templates_max: int) -> ViewStats:
    d0 = np.full(len(queries), np.inf)
    margin = np.full(len(queries), np.inf)
    best: list[str] = [""] * len(queries)
    for start in range(0, len(queries), QUERY_CHUNK):
        rows, dists = exact_top_rows(vectors, queries[start:start + QUERY_CHUNK], CANDIDATE_CARDS * templates_max)
        for i, cands in enumerate(group_templates(rows, dists, row_cards, CANDIDATE_CARDS)):
            if not cands:
                continue
            j = start + i
            best[j], d0[j] = cands[0][0], max(0.0, cands[0][1])
            group = art_group_of(cands[0][0])
            other = [d for c, d in cands[1:] if art_group_of(c) != group]
            if other:
                margin[j] = other[0] - cands[0][1]
            elif len(cands) > 1:
                margin[j] = cands[-1][1] - cands[0][1]   # as decide_match: other arts rank below the list
    correct = np.array([bool(b) and art_group_of(b) == art_group_of(t) for b, t in zip(best, truth)], bool)
    return ViewStats(d0, margin, list(truth), best, correct, list(nuisance))


def measure(vectors: np.ndarray, row_cards: Sequence[str], art_group_of: Callable[[str], str],
            views: CalibrationViews, settings: CalibrationSettings,
            unknown_cards: AbstractSet[str] | None = None) -> tuple[ViewStats, ViewStats]:
    """Known: every view against the whole database. Unknown: the cards' art groups split into folds;
    each fold's views (and its clean templates) are searched against the database without that fold.
    ``unknown_cards``: only these cards' views stand for unknown cards (those a catalogue-trained model
    never saw); None: every card's."""
    vectors = np.asarray(vectors, np.float32)
    counts: dict[str, int] = {}
    for c in row_cards:
        counts[c] = counts.get(c, 0) + 1
    tmax = max(counts.values(), default=1)
    in_db = [t in counts for t in views.truth]
    keep = np.flatnonzero(in_db)
    known = _stats(views.vectors[keep], [views.truth[i] for i in keep], [views.nuisance[i] for i in keep],
                   vectors, row_cards, art_group_of, tmax)
    chosen = sorted({views.truth[i] for i in keep})
    fold_of = {c: int(_stable_order(art_group_of(c), settings.seed)[:8], 16) % settings.folds for c in chosen}
    row_fold = np.array([fold_of.get(c, -1) for c in row_cards])
    parts: list[ViewStats] = []
    as_unknown = np.array([unknown_cards is None or c in unknown_cards for c in row_cards], bool)
    for f in range(settings.folds):
        q_idx = [i for i in keep if fold_of[views.truth[i]] == f
                 and (unknown_cards is None or views.truth[i] in unknown_cards)]
        clean_rows = np.flatnonzero((row_fold == f) & as_unknown)
        rest = np.flatnonzero(row_fold != f)
        if (not q_idx and not len(clean_rows)) or not len(rest):
            continue
        queries = np.concatenate([views.vectors[q_idx], vectors[clean_rows]])
        truth = [views.truth[i] for i in q_idx] + [row_cards[int(r)] for r in clean_rows]
        nuis = [views.nuisance[i] for i in q_idx] + [CLEAN] * len(clean_rows)
        rest_cards = [row_cards[int(r)] for r in rest]
        parts.append(_stats(queries, truth, nuis, vectors[rest], rest_cards, art_group_of,
                            max(1, tmax)))
    if not parts:
        raise DatabaseError("calibration: no fold could be left out (one art group only?)")
    unknown = ViewStats(np.concatenate([p.distance_cos for p in parts]),
                        np.concatenate([p.margin_other for p in parts]),
                        [t for p in parts for t in p.truth], [b for p in parts for b in p.best],
                        np.concatenate([p.correct for p in parts]), [n for p in parts for n in p.nuisance])
    return known, unknown


def trained_cards_from(calibration: Mapping[str, Any] | None, card_ids: Iterable[str]) -> frozenset[str] | None:
    """The cards a catalogue-trained model saw, from an earlier calibration of the same database (its
    ``never_trained_cards``); None when that calibration was made for a model not trained on the catalogue."""
    never = calibration.get("never_trained_cards") if calibration else None
    if not isinstance(never, list):
        return None
    unseen = {str(c) for c in never}
    return frozenset(c for c in card_ids if c not in unseen)


def calibrate(vectors: np.ndarray, row_cards: Sequence[str], art_group_of: Callable[[str], str],
              views: CalibrationViews, settings: CalibrationSettings,
              trained_cards: AbstractSet[str] | None = None) -> dict[str, Any]:
    """The manifest's ``calibration`` section: chosen bands, per-view and per-card rates, curves.

    ``trained_cards``: the cards a catalogue-trained model saw (its manifest's ``training.trained_cards``).
    Left out of the index, those look more foreign to it than a card it never saw, so only the others
    stand for unknown cards when at least ``cards_min`` of them have views (else every card does, and
    ``unknowns`` in the section says the figures are understated). ``usable`` is false (the matcher then
    uses its uncalibrated fallback bands) when fewer than ``cards_min`` cards have views: too few unknowns
    to estimate the target rate."""
    in_db = set(row_cards)
    with_views = {t for t in views.truth if t in in_db}
    cards = len(with_views)
    unseen = None if trained_cards is None else frozenset(with_views - set(trained_cards))
    # too few never-trained cards for the target: every card stands for unknowns (biased, and said so)
    unknown_cards = unseen if unseen is not None and len(unseen) >= settings.cards_min else None
    if unseen is None:
        unknowns = "every card (left out)"
    elif unknown_cards is not None:
        unknowns = f"the {len(unseen)} cards the model was not trained on (left out)"
    else:
        unknowns = (f"every card (left out), though the model was trained on {cards - len(unseen)} of them: only "
                    f"{len(unseen)} were held out of training (< build.calibration_cards_min {settings.cards_min}), "
                    "so the false accepts are understated; train with a larger --holdout")
        LOG.warning("calibration: %s", unknowns)
    base: dict[str, Any] = {"target_false_accept_per_view": settings.target_false_accept,
                            "agreeing_views": settings.agreeing_views, "nuisances": list(settings.nuisances),
                            "cards_with_views": cards, "folds": settings.folds, "unknowns": unknowns}
    if trained_cards is not None:   # kept so that `db merge` (no model at hand) can calibrate the same way
        base["never_trained_cards"] = sorted(in_db - set(trained_cards))
    if cards < settings.cards_min:
        return {**base, "usable": False,
                "reason": f"{cards} cards with calibration views < build.calibration_cards_min "
                          f"({settings.cards_min}): too few to estimate a {settings.target_false_accept:.2%} "
                          "false-accept rate; the matcher uses bands.fallback_*"}
    known, unknown = measure(vectors, row_cards, art_group_of, views, settings, unknown_cards)
    t = choose_thresholds(known, unknown, settings.target_false_accept, settings.known_unknown_rate)
    pv = view_rates(known, unknown, t)
    pc = card_rates(known, unknown, t, settings.agreeing_views)
    return {**base, "usable": True,
            "bands": {"confirm_distance_max": t.confirm_distance_max, "confirm_margin_min": t.confirm_margin_min,
                      "uncertain_distance_max": t.uncertain_distance_max},
            "known_views": len(known.truth), "unknown_views": len(unknown.truth),
            "per_view": {k: round(v, 5) for k, v in pv.items()},
            "per_card": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in pc.items()},
            "per_card_unknown_false_accept_if_independent": round(independent_card_false_accept(
                pv["unknown_false_accept"], pc["views_per_card"], settings.agreeing_views), 8),
            "per_nuisance": per_nuisance(known, unknown, t),
            "curves": curves(known, unknown, t)}


def plot_calibration(calibration: dict[str, Any], out: pathlib.Path) -> None:
    """Distance histograms of known and left-out views, false/true accept curves, chosen thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not calibration.get("usable"):
        raise DatabaseError(f"database has no usable calibration: {calibration.get('reason', 'none recorded')}")
    c = calibration["curves"]
    b = calibration["bands"]
    edges = np.asarray(c["distance_edges"])
    centres = (edges[:-1] + edges[1:]) / 2
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    width = edges[1] - edges[0]
    kh = np.asarray(c["known_distance_hist"], float)
    uh = np.asarray(c["unknown_distance_hist"], float)
    ax1.bar(centres, kh / max(kh.sum(), 1), width, alpha=0.6, label="known views (augmented references)")
    ax1.bar(centres, uh / max(uh.sum(), 1), width, alpha=0.6, label="unknown views (left out)")
    for name, x in (("confirm", b["confirm_distance_max"]), ("unknown", b["uncertain_distance_max"])):
        ax1.axvline(x, color="k", ls="--")
        ax1.text(x, ax1.get_ylim()[1] * 0.9, f" {name} {x:.3f}")
    ax1.set_xlabel("best cosine distance")
    ax1.set_ylabel("fraction of views")
    ax1.legend(fontsize=8)
    ax2.plot(edges[1:], c["false_accept_at_distance"], label="unknown false accept / view")
    ax2.plot(edges[1:], c["true_accept_at_distance"], label="known confirmed right / view")
    ax2.axvline(b["confirm_distance_max"], color="k", ls="--")
    ax2.axhline(calibration["target_false_accept_per_view"], color="r", ls=":", label="target")
    ax2.set_xlabel(f"confirm_distance_max (margin ≥ {b['confirm_margin_min']:.3f})")
    ax2.set_yscale("symlog", linthresh=1e-3)
    ax2.legend(fontsize=8)
    pv, pc = calibration["per_view"], calibration["per_card"]
    fig.suptitle(f"per view: false accept {pv['unknown_false_accept']:.2%}, known confirmed "
                 f"{pv['known_confirmed_right']:.1%}; per card ({calibration['agreeing_views']} views): false accept "
                 f"{pc['unknown_false_accept']:.2%}, known confirmed {pc['known_confirmed_right']:.1%}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
