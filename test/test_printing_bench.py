"""The printing benchmark (cardsorter.bench.printing): its reprint catalogue, high-resolution renders, camera
views and scoring, and the reader's second read of an upside-down view."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from collections import Counter

import cv2
import numpy as np
import pytest
from test_printing_ocr import FakeRapidOCR

from cardsorter.backends.printing_ocr import RapidOcrReader
from cardsorter.bench.printing import NUISANCES, _rng, camera_view, run_track, summarise
from cardsorter.core.printing import PrintingResolverConfig, ViewReading, number_matches, read_lines
from cardsorter.sim.catalog import (
    CARD_H_PX,
    CARD_W_PX,
    FOOTER_LAYOUTS,
    CardDesign,
    collector_text,
    generate_catalog,
    load_catalog,
    render_card,
    reprint_designs,
)

HAS_RAPIDOCR = importlib.util.find_spec("rapidocr_onnxruntime") is not None


def test_every_artwork_has_two_to_eight_printings_each_in_another_set() -> None:
    designs = reprint_designs(30, seed=5)
    by_art = Counter(d.record.art_id for d in designs)
    assert len(by_art) == 30 and all(2 <= n <= 8 for n in by_art.values())
    assert max(by_art.values()) > min(by_art.values())        # the counts vary
    assert len({d.record.card_id for d in designs}) == len(designs)
    for art in by_art:
        printings = [d.record for d in designs if d.record.art_id == art]
        assert len({r.set_id for r in printings}) == len(printings)
        assert all(r.set_code == r.set_id.upper() and 0 < int(r.number) <= r.printed_total for r in printings)
    assert [d.record for d in reprint_designs(30, seed=5)] == [d.record for d in designs]


def test_a_high_resolution_render_is_the_same_card_larger() -> None:
    design = reprint_designs(1, seed=2)[0]
    small, large = render_card(design), render_card(design, 1000)
    assert small.shape == (CARD_H_PX, CARD_W_PX, 3)
    assert np.array_equal(render_card(design, CARD_H_PX), small)
    assert large.shape == (1000, round(CARD_W_PX * 1000 / CARD_H_PX), 3)
    down = cv2.resize(large, (CARD_W_PX, CARD_H_PX), interpolation=cv2.INTER_AREA)
    assert float(np.mean(np.abs(down.astype(np.int16) - small.astype(np.int16)))) < 8.0   # of 255
    with pytest.raises(ValueError, match="card_height_px"):
        render_card(design, 10)


def _design_of_layout(layout: str) -> CardDesign:
    return next(d for d in reprint_designs(20, seed=1) if FOOTER_LAYOUTS[d.set_info.era] == layout)


def test_the_collector_number_is_printed_as_its_era_prints_it() -> None:
    modern, classic = _design_of_layout("modern"), _design_of_layout("classic")
    assert collector_text(modern) == f"{int(modern.record.number):03d}/{modern.set_info.total:03d}"
    assert collector_text(classic) == f"{int(classic.record.number)}/{classic.set_info.total}"


def _ink_columns(card: np.ndarray) -> np.ndarray:
    """Columns of the bottom border strip that carry dark print."""
    strip = cv2.cvtColor(card[int(0.975 * card.shape[0]):int(0.99 * card.shape[0])], cv2.COLOR_BGR2GRAY)
    return np.flatnonzero((strip < 80).any(axis=0))


def test_modern_cards_print_the_number_bottom_left_and_classic_ones_bottom_right() -> None:
    # the number is the footer's first line on modern cards (left), the end of the right one on classic cards
    modern = _ink_columns(render_card(_design_of_layout("modern"), 1000))
    classic = _ink_columns(render_card(_design_of_layout("classic"), 1000))
    width = round(CARD_W_PX * 1000 / CARD_H_PX)
    assert modern.min() < 0.1 * width and classic.max() > 0.9 * width


def test_the_catalogue_metadata_carries_the_printed_total_and_set_code(tmp_path: pathlib.Path) -> None:
    records = generate_catalog(tmp_path, cards=8, seed=3)
    entry = json.loads((tmp_path / "metadata.json").read_text())[0]
    assert entry["set"]["printedTotal"] == records[0].printed_total > 0
    assert entry["set"]["ptcgoCode"] == records[0].set_code == records[0].set_id.upper()
    assert [r for r, _ in load_catalog(tmp_path)] == records


@pytest.mark.parametrize("nuisance", NUISANCES)
def test_a_camera_view_keeps_the_card_size_and_is_reproducible(nuisance: str) -> None:
    card = render_card(reprint_designs(1, seed=2)[0], 600)
    view = camera_view(card, nuisance, _rng(1, "a", nuisance))
    assert view.shape == card.shape and view.dtype == np.uint8
    assert np.array_equal(view, camera_view(card, nuisance, _rng(1, "a", nuisance)))
    assert not np.array_equal(view, camera_view(card, nuisance, _rng(2, "a", nuisance)))


def test_the_upside_down_view_is_the_clean_view_turned() -> None:
    card = render_card(reprint_designs(1, seed=2)[0], 600)
    clean = camera_view(card, "clean", _rng(4, "x"))
    assert np.array_equal(camera_view(card, "rot180", _rng(4, "x")), cv2.rotate(clean, cv2.ROTATE_180))


def test_an_unknown_nuisance_is_named() -> None:
    with pytest.raises(ValueError, match="rain"):
        camera_view(np.zeros((600, 430, 3), np.uint8), "rain", _rng(0))


class ScriptedReader:
    """A PrintingReader that returns one scripted line per view, in order."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = list(lines)

    def read(self, card_bgr: np.ndarray) -> ViewReading:
        text = self._lines.pop(0)
        return read_lines([(text, 0.95)] if text else [])

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("lines", "verdict", "reads"), [
    (["{own}", "{own}", "{own}"], "exact", (3, 0, 0)),
    (["{own}", "", ""], "ambiguous", (1, 0, 2)),                # one view is never enough
    (["", "", ""], "unreadable", (0, 0, 3)),
    (["{own}", "{other}", "{own}"], "ambiguous", (2, 1, 0)),    # a view naming another printing blocks
    (["{other}", "{other}", "{own}"], "ambiguous", (1, 2, 0)),
    (["{other}", "{other}", ""], "wrong", (0, 2, 1)),           # two agreeing misreads: the wrong printing
])
def test_a_track_is_scored_by_the_resolver_over_its_views(lines: list[str], verdict: str,
                                                          reads: tuple[int, int, int]) -> None:
    designs = reprint_designs(3, seed=9)
    art = designs[0].record.art_id
    printings = [d for d in designs if d.record.art_id == art]
    own, other = printings[0], printings[1]
    script = [t.format(own=f"EN {collector_text(own)}", other=f"EN {collector_text(other)}") for t in lines]
    card = render_card(own, 500)
    result = run_track(ScriptedReader(script), own, [d.record for d in printings], card, "clean", 3, 0,
                       PrintingResolverConfig(min_agreeing_views=2))
    assert result.verdict == verdict
    assert (result.exact_reads, result.wrong_reads, result.no_reads) == reads
    row = summarise([result])
    assert row["exact_printing"] == (1.0 if verdict == "exact" else 0.0)
    assert row["wrong_printing"] == (1.0 if verdict == "wrong" else 0.0)


def test_the_reader_reads_an_upside_down_view_once_more_turned() -> None:
    # upright: both corners detect nothing and the fixed boxes read nothing; turned: the left corner reads
    fake = FakeRapidOCR(detected=[[], [], [("SV1 EN 025/165", 0.95)], []], recognised=[("", 0.0)])
    reading = RapidOcrReader(fake).read(np.full((700, 501, 3), 200, np.uint8))
    assert [n.text for n in reading.numbers] == ["025/165"]
    assert reading.method == "detect, turned 180°"
    assert len(fake.det_crops) == 4


def test_without_the_retry_an_unread_view_is_read_once() -> None:
    fake = FakeRapidOCR(detected=[[], []], recognised=[("", 0.0)])
    reading = RapidOcrReader(fake, upside_down_retry=False).read(np.full((700, 501, 3), 200, np.uint8))
    assert reading.numbers == () and len(fake.det_crops) == 2


@pytest.mark.skipif(not HAS_RAPIDOCR, reason="the optional package rapidocr-onnxruntime is not installed "
                                             "(docs/PRINTINGS.md)")
@pytest.mark.parametrize("layout", ["modern", "classic"])
def test_the_real_engine_reads_a_procedural_card_of_each_layout(layout: str) -> None:
    design = _design_of_layout(layout)
    view = camera_view(render_card(design, 1000), "clean", _rng(3, layout))
    with RapidOcrReader() as reader:
        reading = reader.read(view)
    assert any(number_matches(n, design.record) for n in reading.numbers), reading.lines
