"""Decision bands on constructed distances, and grouping of template hits by card."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cardsorter.core.errors import ConfigError
from cardsorter.core.matching import (
    MatchBandsConfig,
    decide_match,
    group_templates,
)
from cardsorter.core.types import Candidate, CardRecord, MatchBand
from cardsorter.settings import build, load_settings

FALLBACK = {"fallback_confirm_distance_max": 0.25, "fallback_confirm_margin_min": 0.05,
            "fallback_uncertain_distance_max": 0.40}
CFG = MatchBandsConfig(confirm_distance_max=0.25, confirm_margin_min=0.05, art_margin_min=0.02,
                       uncertain_distance_max=0.40, **FALLBACK)
ART = {"a1": "art-a", "a2": "art-a", "a3": "art-a"}


def art_of(card_id: str) -> str:
    return ART.get(card_id, card_id)


def cands(*pairs: tuple[str, float]) -> list[Candidate]:
    return [Candidate(CardRecord(cid, cid, "s"), d) for cid, d in pairs]


@pytest.mark.parametrize(("pairs", "band"), [
    ((("x", 0.10), ("y", 0.30)), MatchBand.CONFIRMED),
    ((("x", 0.25), ("y", 0.31)), MatchBand.CONFIRMED),              # distance limit inclusive
    ((("x", 0.10), ("y", 0.14)), MatchBand.UNCERTAIN),              # small margin to another art
    ((("x", 0.26), ("y", 0.60)), MatchBand.UNCERTAIN),              # moderate distance
    ((("x", 0.40), ("y", 0.60)), MatchBand.UNCERTAIN),
    ((("x", 0.41), ("y", 0.60)), MatchBand.UNKNOWN),
    ((("a1", 0.10), ("a2", 0.11), ("y", 0.40)), MatchBand.AMBIGUOUS),  # printings of one art, tiny margin
    ((("a1", 0.10), ("a2", 0.13), ("y", 0.40)), MatchBand.CONFIRMED),  # printing separable
    ((("a1", 0.10), ("a2", 0.11), ("y", 0.12)), MatchBand.UNCERTAIN),  # another art close too
    ((("a1", 0.30), ("a2", 0.30), ("y", 0.60)), MatchBand.UNCERTAIN),  # not confident enough for ambiguous
    ((("x", 0.05),), MatchBand.CONFIRMED),                          # only one card in the database
])
def test_bands(pairs: tuple[tuple[str, float], ...], band: MatchBand) -> None:
    assert decide_match(3, cands(*pairs), art_of, CFG).band == band


def test_margin_is_to_the_best_different_card() -> None:
    match = decide_match(1, cands(("y", 0.30), ("x", 0.10), ("z", 0.50)), art_of, CFG)
    assert match.best is not None and match.best.card.card_id == "x"
    assert match.margin_to_runner_up == pytest.approx(0.20) and match.track_id == 1


def test_other_art_margin_is_bounded_by_the_last_candidate_when_all_are_one_art() -> None:
    match = decide_match(1, cands(("a1", 0.10), ("a2", 0.13), ("a3", 0.14)), art_of, CFG)
    assert match.band == MatchBand.UNCERTAIN  # other arts may be just below 0.14 + epsilon


def test_no_candidates_is_unknown() -> None:
    match = decide_match(1, [], art_of, CFG)
    assert match.band == MatchBand.UNKNOWN and math.isinf(match.margin_to_runner_up)


def test_bands_config_from_the_parameters_file() -> None:
    matcher = load_settings().matcher
    cfg = matcher.bands
    assert cfg.confirm_distance_max <= cfg.uncertain_distance_max
    assert matcher.matching.k >= 2


def test_inverted_bands_are_a_config_error() -> None:
    params = {"bands.confirm_distance_max": 0.5, "bands.confirm_margin_min": 0.05, "bands.art_margin_min": 0.02,
              "bands.uncertain_distance_max": 0.4, **{"bands." + k: v for k, v in FALLBACK.items()}}
    with pytest.raises(ConfigError, match="uncertain_distance_max"):
        build(MatchBandsConfig, params, "bands.")


def test_group_templates_keeps_the_best_template_per_card() -> None:
    row_to_card = ["a", "a", "b", "c", "b"]
    rows = np.array([[1, 0, 4, 2, 3], [3, -1, 2, 0, 1]])
    dists = np.array([[0.1, 0.2, 0.15, 0.3, 0.5], [0.4, np.inf, 0.2, 0.3, 0.35]], np.float32)
    grouped = group_templates(rows, dists, row_to_card, k=2)
    assert [[(c, round(d, 3)) for c, d in q] for q in grouped] == [[("a", 0.1), ("b", 0.15)],
                                                                   [("b", 0.2), ("a", 0.3)]]


def test_group_templates_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="must be equal"):
        group_templates(np.zeros((1, 3), int), np.zeros((1, 2)), ["a"], k=1)


def test_negative_bands_take_the_database_calibration_and_numbers_override() -> None:
    from cardsorter.core.matching import resolve_bands

    yaml_cfg = MatchBandsConfig(confirm_distance_max=-1.0, confirm_margin_min=-1.0, art_margin_min=0.02,
                                uncertain_distance_max=-1.0, **FALLBACK)
    with pytest.raises(ValueError, match="resolved"):
        decide_match(1, cands(("x", 0.1)), art_of, yaml_cfg)
    bands, source = resolve_bands(yaml_cfg, (0.07, 0.03, 0.12))
    assert source == "database"
    assert (bands.confirm_distance_max, bands.confirm_margin_min, bands.uncertain_distance_max) == (0.07, 0.03, 0.12)
    assert decide_match(1, cands(("x", 0.10), ("y", 0.30)), art_of, bands).band == MatchBand.UNCERTAIN
    fallback, source = resolve_bands(yaml_cfg, None)
    assert source == "fallback" and fallback.confirm_distance_max == 0.25
    override = MatchBandsConfig(confirm_distance_max=0.2, confirm_margin_min=-1.0, art_margin_min=0.02,
                                uncertain_distance_max=-1.0, **FALLBACK)
    mixed, source = resolve_bands(override, (0.07, 0.03, 0.12))
    assert mixed.confirm_distance_max == 0.2 and mixed.confirm_margin_min == 0.03
    assert mixed.uncertain_distance_max == 0.2   # never below confirm when sources mix
    assert "confirm_distance_max:parameters" in source
