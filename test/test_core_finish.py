"""The finish from a track's closeups (core/finish.py), the synthetic foil that shows it (sim/scene.py), and
what a finish nobody saw does downstream: never assumed, AMBIGUOUS only where the bins file sorts by finish."""

from __future__ import annotations

import dataclasses
import pathlib
import zlib

import cv2
import numpy as np
import pytest
from decisions_support import MS, card, identity, rules_from, sorter_config

from cardsorter.bench import finish as bench
from cardsorter.core.finish import (
    DEFAULT_FINISH_CONFIG,
    FinishConfig,
    FinishTracker,
    decide_finish,
    foil_class,
    narrow_by_finish,
    view_chroma,
)
from cardsorter.core.sorting import SorterCore
from cardsorter.core.types import UNKNOWN_FINISH, SortStatus, TrackState
from cardsorter.sim.catalog import write_catalog


@pytest.fixture(scope="module")
def foil_catalog(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("foils")
    write_catalog(bench.foil_designs(3, seed=5), root, card_height_px=bench.CLOSEUP_HEIGHT_PX)
    return root


@pytest.mark.parametrize("nuisance", ["clean", "finger", "rot180"])
def test_normal_holo_and_reverse_holo_are_told_from_belt_closeups(foil_catalog: pathlib.Path, nuisance: str) -> None:
    rows = bench.run(foil_catalog, nuisance, views=3, interval=3, seed=5, corner_error=0.01,
                     config=DEFAULT_FINISH_CONFIG)
    assert {r["finish"] for r in rows} == {"normal", "holo", "reverse_holo"}
    assert not [r for r in rows if r["verdict"] == "wrong"], rows
    assert sum(r["verdict"] == "correct" for r in rows) >= len(rows) - 1, rows


def _card_face(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    face = cv2.resize(rng.integers(0, 255, (14, 10, 3), dtype=np.uint8), (500, 700), interpolation=cv2.INTER_CUBIC)
    return np.asarray(face)


def test_one_view_or_a_still_card_names_no_foil_and_a_blown_out_card_is_not_called_normal() -> None:
    face = _card_face(1)
    tracker = FinishTracker(DEFAULT_FINISH_CONFIG)
    assert tracker.add(face).finish == "unknown"                  # one view: nothing to compare
    assert tracker.add(face.copy()).finish == "normal"            # two identical views: no foil
    white = np.full_like(face, 255)
    assert decide_finish([view_chroma(white), view_chroma(white)], DEFAULT_FINISH_CONFIG).finish == "unknown"


def test_a_view_turned_upside_down_is_compared_turned_back() -> None:
    face = _card_face(2)
    views = [view_chroma(face), view_chroma(cv2.rotate(face, cv2.ROTATE_180))]
    assert decide_finish(views, DEFAULT_FINISH_CONFIG).finish == "normal"


def test_bad_closeups_and_settings_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="BGR uint8"):
        view_chroma(np.zeros((700, 500), np.uint8))
    with pytest.raises(ValueError, match="too small"):
        view_chroma(np.zeros((10, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="still_change_max"):
        FinishConfig(min_views=2, foil_change_min=5.0, still_change_max=6.0, region_ratio_min=2.0)


def test_catalogue_finishes_map_to_what_a_foil_looks_like() -> None:
    assert [foil_class(f) for f in ("normal", "first_edition_holo", "reverse_holo", "etched", "shiny")] == [
        "normal", "holo", "reverse_holo", "holo", ""]
    assert narrow_by_finish(["normal", "reverse_holo", "holo"], "reverse_holo") == [1]
    assert narrow_by_finish(["normal", "reverse_holo"], "unknown") == [0, 1]


MULTI = dataclasses.replace(card("s1-9"), finish="normal", finishes=("normal", "reverse_holo"))


@pytest.mark.parametrize("bins,status,bin_name", [
    ("rules:\n  - {bin: a, finish: reverse_holo}\n  - {bin: b, any: true}\n", SortStatus.AMBIGUOUS, "reject"),
    ("rules:\n  - {bin: a, set: s1}\n  - {bin: b, any: true}\n", SortStatus.CONFIRMED, "a"),
])
def test_an_unknown_finish_is_ambiguous_only_where_the_bins_file_sorts_by_finish(
        tmp_path: pathlib.Path, bins: str, status: SortStatus, bin_name: str) -> None:
    core = SorterCore(sorter_config(mode="station"), rules_from(tmp_path, bins))
    unseen = dataclasses.replace(MULTI, finish=UNKNOWN_FINISH)
    (d,) = core.on_identity(identity(1, TrackState.CONFIRMED, unseen, 10 * MS))
    assert (d.status, d.bin_name) == (status, bin_name)
    assert d.card is not None and d.card.finish == UNKNOWN_FINISH
    if status == SortStatus.AMBIGUOUS:
        assert "finish unknown" in d.reason


def test_a_glare_that_moves_between_views_is_not_a_foil() -> None:
    from cardsorter.bench.printing import camera_view
    from cardsorter.sim.catalog import render_card

    called = []
    for d in bench.foil_designs(4, seed=9)[::3]:              # the normal printings: no foil
        card = render_card(d, 700)
        key = zlib.crc32(d.record.card_id.encode())
        views = [view_chroma(camera_view(card, "glare", np.random.default_rng([9, key, v]))) for v in range(3)]
        called.append(decide_finish(views, DEFAULT_FINISH_CONFIG).finish)
    assert not [f for f in called if f in ("holo", "reverse_holo")], called
