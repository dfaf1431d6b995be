"""Matcher rules: group template hits by card and put each view into a decision band."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.types import Candidate, CardMatch, MatchBand


@dataclass(frozen=True)
class MatcherConfig:
    """What matching reads of the matcher's settings (bands.* and search.* have their own configs)."""

    k: int = doc("distinct cards returned per embedding (>= 2: the margin needs a runner-up)", lo=2)

    def __post_init__(self) -> None:
        check_ranges(self)


FROM_DATABASE = -1.0   # a band threshold < 0 in the YAML: use the database's calibration


@dataclass(frozen=True)
class MatchBandsConfig:
    """Cosine-distance bands; distances are 1 - cos(query, reference) in [0, 2].

    confirm_distance_max, confirm_margin_min and uncertain_distance_max < 0 mean "the database's
    calibrated value" (``resolve_bands``); a value >= 0 overrides it. decide_match needs resolved bands.
    """

    confirm_distance_max: float = doc("best distance at or below which a view can be CONFIRMED (< 0: the database's)",
                                      lo=FROM_DATABASE, hi=2.0)
    confirm_margin_min: float = doc(
        "CONFIRMED also needs the best card of a DIFFERENT art to be at least this much farther "
        "than the best; a smaller margin means 'looks a bit like several cards' → UNCERTAIN (< 0: the database's)",
        lo=FROM_DATABASE, hi=2.0)
    art_margin_min: float = doc(
        "between printings of one art (same art group), the runner-up must be at least this much "
        "farther to tell them apart; below it a confident view is AMBIGUOUS", lo=0.0, hi=2.0)
    uncertain_distance_max: float = doc(
        "best distance above which the card is UNKNOWN (not in the database) (< 0: the database's)",
        lo=FROM_DATABASE, hi=2.0)
    fallback_confirm_distance_max: float = doc("confirm_distance_max for a database without a usable calibration",
                                               lo=0.0, hi=2.0)
    fallback_confirm_margin_min: float = doc("confirm_margin_min for a database without a usable calibration",
                                               lo=0.0, hi=2.0)
    fallback_uncertain_distance_max: float = doc("uncertain_distance_max for a database without a usable calibration",
                                               lo=0.0, hi=2.0)

    def __post_init__(self) -> None:
        check_ranges(self)
        pairs = [(self.confirm_distance_max, self.uncertain_distance_max),
                 (self.fallback_confirm_distance_max, self.fallback_uncertain_distance_max)]
        for lo, hi in pairs:
            explicit = [v for v in (lo, hi) if v >= 0.0]
            if any(v > 2.0 for v in explicit) or (lo >= 0.0 and hi >= 0.0 and lo > hi):
                raise ValueError("need 0 <= confirm_distance_max <= uncertain_distance_max <= 2, got "
                                 f"{lo}, {hi}")
        if self.fallback_confirm_distance_max < 0 or self.fallback_uncertain_distance_max < 0 \
                or self.fallback_confirm_margin_min < 0:
            raise ValueError("fallback_* bands must be >= 0 (they are used when the database has no calibration)")
        if self.art_margin_min < 0.0:
            raise ValueError(f"margins must be >= 0, got art_margin_min={self.art_margin_min}")

    @property
    def resolved(self) -> bool:
        return min(self.confirm_distance_max, self.confirm_margin_min, self.uncertain_distance_max) >= 0.0


def resolve_bands(config: MatchBandsConfig, calibrated: tuple[float, float, float] | None,
                  ) -> tuple[MatchBandsConfig, str]:
    """Concrete bands: each threshold from the YAML when >= 0, else the database's calibrated
    (confirm_distance_max, confirm_margin_min, uncertain_distance_max), else the fallback.

    Returns the bands and where they came from ('database', 'parameters', 'fallback' or a mix).
    """
    names = ("confirm_distance_max", "confirm_margin_min", "uncertain_distance_max")
    values: dict[str, float] = {}
    sources: list[str] = []
    for i, name in enumerate(names):
        explicit = float(getattr(config, name))
        if explicit >= 0.0:
            values[name], src = explicit, "parameters"
        elif calibrated is not None:
            values[name], src = float(calibrated[i]), "database"
        else:
            values[name], src = float(getattr(config, "fallback_" + name)), "fallback"
        sources.append(src)
    # a mix of sources may cross: unknown never below confirm
    values["uncertain_distance_max"] = max(values["uncertain_distance_max"], values["confirm_distance_max"])
    source = sources[0] if len(set(sources)) == 1 else "+".join(f"{n}:{s}" for n, s in zip(names, sources))
    return dataclasses.replace(config, **values), source


def decide_match(track_id: int, candidates: Sequence[Candidate],
                 art_group_of: Callable[[str], str], config: MatchBandsConfig) -> CardMatch:
    """Band one view from its top-k distinct cards (best first).

    margin_to_runner_up = distance of the best different card − best distance (inf without one).
    CONFIRMED: best ≤ confirm_distance_max, the best card of another art is ≥ confirm_margin_min
    farther, and a printing of the same art (if any ranks) is ≥ art_margin_min farther.
    AMBIGUOUS: as confirmed, except a printing of the same art is within art_margin_min: we know
    the art, not the printing. UNKNOWN: best > uncertain_distance_max (or no candidates).
    UNCERTAIN: everything else (moderate distance, or close to a card of a different art).
    With only top-k known, an other-art card not in the list is at least as far as the last one,
    so the margin against other arts is bounded below by (last − best): conservative.
    ``config`` must be resolved (``resolve_bands``): no negative "database's" placeholder.
    """
    if not config.resolved:
        raise ValueError("decide_match needs resolved bands (resolve_bands with the database's calibration)")
    ordered = tuple(sorted(candidates, key=lambda c: c.distance_cos))
    if not ordered:
        return CardMatch(track_id, MatchBand.UNKNOWN, (), math.inf)
    best = ordered[0]
    d0 = best.distance_cos
    margin = ordered[1].distance_cos - d0 if len(ordered) > 1 else math.inf
    if d0 > config.uncertain_distance_max:
        return CardMatch(track_id, MatchBand.UNKNOWN, ordered, margin)
    group = art_group_of(best.card.card_id)
    same_art = [c for c in ordered[1:] if art_group_of(c.card.card_id) == group]
    other_art = [c for c in ordered[1:] if art_group_of(c.card.card_id) != group]
    if other_art:
        margin_other = other_art[0].distance_cos - d0
    elif len(ordered) > 1:
        margin_other = ordered[-1].distance_cos - d0  # lower bound: other arts rank below the list
    else:
        margin_other = math.inf
    margin_same = same_art[0].distance_cos - d0 if same_art else math.inf
    if d0 <= config.confirm_distance_max and margin_other >= config.confirm_margin_min:
        band = MatchBand.CONFIRMED if margin_same >= config.art_margin_min else MatchBand.AMBIGUOUS
        return CardMatch(track_id, band, ordered, margin)
    return CardMatch(track_id, MatchBand.UNCERTAIN, ordered, margin)


def group_templates(rows: np.ndarray, distances: np.ndarray, row_to_card: Sequence[str],
                    k: int) -> list[list[tuple[str, float]]]:
    """Per query, the k best distinct cards (min distance over each card's templates), best first.

    ``rows``/``distances`` are (N, R) row indices and distances of template hits, sorted or not;
    negative rows and non-finite distances (padding) are ignored.
    """
    if rows.shape != distances.shape or rows.ndim != 2:
        raise ValueError(f"rows {rows.shape} and distances {distances.shape} must be equal (N, R)")
    out: list[list[tuple[str, float]]] = []
    for q in range(rows.shape[0]):
        best: dict[str, float] = {}
        order = np.argsort(distances[q], kind="stable")
        for j in order:
            r = int(rows[q, j])
            d = float(distances[q, j])
            if r < 0 or not math.isfinite(d):
                continue
            card = row_to_card[r]
            if card not in best:
                best[card] = d
                if len(best) == k:
                    break
        out.append(sorted(best.items(), key=lambda item: item[1]))
    return out
