"""Open-set calibration per database: thresholds from known views and left-out cards, used by the matcher."""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pytest
from db_support import PixelEmbedder, configs, standard_images

from cardsorter.core.calibration import ViewStats, card_rates, choose_thresholds, view_rates
from cardsorter.db.build import build_database
from cardsorter.db.calibrate import plot_calibration
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.delta import add_to_database, merge_database
from cardsorter.db.store import CALIBRATION_VIEWS_FILE, MANIFEST_FILE


def stats(d: list[float], m: list[float], correct: list[bool] | None = None, per_card: int = 1) -> ViewStats:
    n = len(d)
    truth = [f"c{i // per_card}" for i in range(n)]
    return ViewStats(np.array(d), np.array(m), truth, [f"b{i // per_card}" for i in range(n)],
                     np.array(correct if correct is not None else [True] * n), ["glare"] * n)


def test_thresholds_separate_known_from_unknown_at_the_target_rate() -> None:
    rng = np.random.default_rng(0)
    known = stats(list(rng.uniform(0.0, 0.05, 400)), list(rng.uniform(0.05, 0.2, 400)))
    unknown = stats(list(rng.uniform(0.08, 0.3, 400)), list(rng.uniform(0.0, 0.04, 400)))
    t = choose_thresholds(known, unknown, 0.005, 0.01)
    rates = view_rates(known, unknown, t)
    assert rates["unknown_false_accept"] <= 0.005
    assert rates["known_confirmed_right"] >= 0.99      # separable: nearly every known view confirmed
    assert t.confirm_distance_max <= t.uncertain_distance_max


def test_overlapping_distributions_trade_known_accepts_for_the_target() -> None:
    rng = np.random.default_rng(1)
    known = stats(list(rng.uniform(0.0, 0.2, 1000)), [0.1] * 1000)
    unknown = stats(list(rng.uniform(0.1, 0.3, 1000)), [0.1] * 1000)
    strict = choose_thresholds(known, unknown, 0.001, 0.01)
    loose = choose_thresholds(known, unknown, 0.2, 0.01)
    assert view_rates(known, unknown, strict)["unknown_false_accept"] <= 0.001
    assert strict.confirm_distance_max < loose.confirm_distance_max
    assert view_rates(known, unknown, loose)["known_confirmed_right"] > \
        view_rates(known, unknown, strict)["known_confirmed_right"]


def test_wrong_card_confirmations_also_count_against_the_target() -> None:
    known = stats([0.01] * 50 + [0.02] * 50, [0.1] * 100, [True] * 50 + [False] * 50)
    unknown = stats([0.5] * 100, [0.0] * 100)
    t = choose_thresholds(known, unknown, 0.01, 0.01)
    assert view_rates(known, unknown, t)["known_confirmed_wrong"] <= 0.01


def test_per_card_needs_agreeing_views() -> None:
    # 3 views per unknown card: card c0 has 1 confirmed view, card c1 has all 3 confirmed as b1
    unknown = stats([0.01, 0.5, 0.5, 0.01, 0.01, 0.01], [0.1] * 6, per_card=3)
    known = stats([0.01] * 6, [0.1] * 6, per_card=3)
    t = choose_thresholds(known, stats([0.5] * 3, [0.0] * 3), 0.01, 0.01)
    assert card_rates(known, unknown, t, agreeing_views=3)["unknown_false_accept"] == 0.5
    assert card_rates(known, unknown, t, agreeing_views=4)["unknown_false_accept"] == 0.0


def _build(tmp_path: pathlib.Path, n: int, cards_min: int, name: str = "db") -> tuple[pathlib.Path, object]:
    build_config, search_config, _ = configs()
    build_config = dataclasses.replace(build_config, calibration_cards_min=cards_min)
    images = tmp_path / f"images-{name}"
    standard_images(images, n)
    out = tmp_path / name
    report = build_database(images, out, PixelEmbedder(), build_config=build_config, search_config=search_config)
    return out, report


def test_build_records_a_calibration_the_matcher_uses(tmp_path: pathlib.Path) -> None:
    db_path, _ = _build(tmp_path, 40, cards_min=20)
    manifest = json.loads((db_path / MANIFEST_FILE).read_text())
    cal = manifest["calibration"]
    assert cal["usable"] is True and CALIBRATION_VIEWS_FILE in manifest["files"]
    assert cal["known_views"] == 40 * 5 and cal["unknown_views"] == 40 * 6   # 5 nuisances + clean left out
    assert cal["per_view"]["unknown_false_accept"] <= cal["target_false_accept_per_view"]
    assert set(cal["per_nuisance"]) == {"clean", "glare", "blur", "occlusion20", "perspective", "downscale"}
    _, search_config, yaml_bands = configs()
    db = ReferenceDatabase.load(db_path, "pixels-6x8-v1", search_config)
    bands, source = db.bands(yaml_bands)
    assert source == "database"
    assert bands.confirm_distance_max == cal["bands"]["confirm_distance_max"]
    assert bands.uncertain_distance_max == cal["bands"]["uncertain_distance_max"]
    plot_calibration(cal, tmp_path / "cal.png")
    assert (tmp_path / "cal.png").stat().st_size > 1000


def test_small_catalogue_records_why_and_the_matcher_falls_back(tmp_path: pathlib.Path) -> None:
    db_path, report = _build(tmp_path, 6, cards_min=100)
    assert report.calibration["usable"] is False and "calibration_cards_min" in report.calibration["reason"]
    _, search_config, yaml_bands = configs()
    bands, source = ReferenceDatabase.load(db_path, None, search_config).bands(yaml_bands)
    assert source == "fallback" and bands.confirm_distance_max == yaml_bands.fallback_confirm_distance_max


def test_add_and_merge_recalibrate_over_the_whole_catalogue(tmp_path: pathlib.Path) -> None:
    db_path, first = _build(tmp_path, 30, cards_min=20)
    build_config, search_config, _ = configs()
    build_config = dataclasses.replace(build_config, calibration_cards_min=20)
    extra = tmp_path / "extra"
    standard_images(extra, 10, set_id="sv2")
    added = add_to_database(db_path, extra, PixelEmbedder(), build_config=build_config, search_config=search_config)
    assert added.calibration["cards_with_views"] == 40 and added.calibration["usable"]
    db = ReferenceDatabase.load(db_path, None, search_config)
    assert db.calibration["cards_with_views"] == 40 and len(db.calibration_views()) == 40 * 5
    merged = merge_database(db_path, tmp_path / "merged", build_config=build_config, search_config=search_config)
    assert merged.calibration["cards_with_views"] == 40
    assert merged.calibration["bands"] == added.calibration["bands"]   # same rows, same views, same choice
    assert first.calibration["cards_with_views"] == 30


def test_a_tampered_calibration_file_fails_the_checksum(tmp_path: pathlib.Path) -> None:
    from cardsorter.db.errors import ChecksumMismatchError

    db_path, _ = _build(tmp_path, 25, cards_min=20)
    with (db_path / CALIBRATION_VIEWS_FILE).open("ab") as fh:
        fh.write(b"x")
    _, search_config, _ = configs()
    with pytest.raises(ChecksumMismatchError, match=CALIBRATION_VIEWS_FILE):
        ReferenceDatabase.load(db_path, None, search_config)


class CatalogueTrainedEmbedder(PixelEmbedder):
    """The pixel embedder with a manifest saying which cards "its model" was trained on."""

    def __init__(self, trained: frozenset[str]) -> None:
        super().__init__()
        from cardsorter.config import resolve_path
        from cardsorter.core.model_manifest import load_manifest
        self.manifest = dataclasses.replace(load_manifest(resolve_path("models/cardnet.yaml")), trained_cards=trained)


def _card_ids(images: pathlib.Path) -> list[str]:
    from cardsorter.db.names import list_reference_images, parse_reference_name
    return [parse_reference_name(p.name).card_id for p in list_reference_images(images)]


@pytest.mark.parametrize("trained_n", [15, 30])
def test_a_catalogue_trained_model_is_calibrated_on_the_cards_it_never_saw(tmp_path: pathlib.Path,
                                                                           trained_n: int) -> None:
    # A model pushes the cards it was trained on apart: left out of the index they look more foreign than
    # a new card does, so only the never-trained cards stand for unknowns; too few of them (here under
    # calibration_cards_min 20): every card does, and the section says the figures are understated.
    build_config, search_config, _ = configs()
    build_config = dataclasses.replace(build_config, calibration_cards_min=20)
    standard_images(tmp_path / "images", 40)
    cards = _card_ids(tmp_path / "images")
    report = build_database(tmp_path / "images", tmp_path / "db", CatalogueTrainedEmbedder(frozenset(cards[:trained_n])),
                            build_config=build_config, search_config=search_config)
    cal = report.calibration
    unseen = 40 - trained_n
    assert cal["usable"] is True and cal["known_views"] == 40 * 5
    if unseen >= 20:
        assert cal["unknowns"] == f"the {unseen} cards the model was not trained on (left out)"
        assert cal["unknown_views"] == unseen * 6
    else:
        assert cal["unknowns"].startswith("every card (left out), though the model was trained on 30 of them")
        assert "--holdout" in cal["unknowns"] and cal["unknown_views"] == 40 * 6


def test_a_model_manifest_names_the_cards_it_was_trained_on(tmp_path: pathlib.Path) -> None:
    import shutil

    from cardsorter.config import resolve_path
    from cardsorter.core.errors import ModelError
    from cardsorter.core.model_manifest import load_manifest

    for name in ("cardnet.yaml", "cardnet.onnx"):
        shutil.copy(resolve_path(f"models/{name}"), tmp_path / name)
    assert load_manifest(tmp_path / "cardnet.yaml").trained_cards is None   # the procedural default
    text = (tmp_path / "cardnet.yaml").read_text()
    (tmp_path / "cardnet.yaml").write_text(text.replace("training:\n", "training:\n  trained_cards: cards.txt\n", 1))
    with pytest.raises(ModelError, match="cards.txt"):
        load_manifest(tmp_path / "cardnet.yaml")
    (tmp_path / "cards.txt").write_text("sv1-1\nsv1-2\n\n")
    assert load_manifest(tmp_path / "cardnet.yaml").trained_cards == {"sv1-1", "sv1-2"}


def test_add_and_merge_keep_calibrating_a_catalogue_trained_model_on_its_never_trained_cards(
        tmp_path: pathlib.Path) -> None:
    build_config, search_config, _ = configs()
    build_config = dataclasses.replace(build_config, calibration_cards_min=20)
    standard_images(tmp_path / "images", 30)
    cards = _card_ids(tmp_path / "images")
    embedder = CatalogueTrainedEmbedder(frozenset(cards[:8]))   # 22 of the 30 never trained on
    build_database(tmp_path / "images", tmp_path / "db", embedder, build_config=build_config,
                   search_config=search_config)
    standard_images(tmp_path / "extra", 10, set_id="sv2")       # added later: the model never saw them
    added = add_to_database(tmp_path / "db", tmp_path / "extra", embedder, build_config=build_config,
                            search_config=search_config)
    assert added.calibration["unknowns"] == "the 32 cards the model was not trained on (left out)"
    merged = merge_database(tmp_path / "db", tmp_path / "merged", build_config=build_config,
                            search_config=search_config)
    assert merged.calibration["unknowns"] == added.calibration["unknowns"]
    assert merged.calibration["bands"] == added.calibration["bands"]
    assert len(merged.calibration["never_trained_cards"]) == 32
