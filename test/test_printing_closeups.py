"""Closeups for the printing reader: the synthetic main stream, cutting from buffered frames, the checks of
requests and readings, the matcher's printings of an art, and the messages that carry them."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from cardsorter.backends.cameras import MainStreamSource, SyntheticSource, VideoSource, cut_closeup
from cardsorter.core.types import Candidate, CardMatch, CardRecord, Identity, MatchBand, TrackState
from cardsorter.core.validation import closeup_request_problem, reading_problem
from cardsorter.ros import conversions
from cardsorter.settings import load_settings
from cardsorter.sim.catalog import generate_catalog, load_catalog
from cardsorter.sim.scene import NuisanceConfig, SyntheticScene, read_catalog_dir

SIZE = (640, 480)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("closeups") / "catalog"
    generate_catalog(root, cards=6, seed=4)
    return root


def station(catalog: Path) -> SyntheticScene:
    cfg = dataclasses.replace(load_settings().camera.synthetic.scene, cards=1, mode="station", max_angle_deg=6.0)
    return SyntheticScene(cfg, NuisanceConfig.none(), read_catalog_dir(catalog), 30.0, SIZE)


def _resting_frame(sc: SyntheticScene) -> tuple[int, tuple[tuple[float, float], ...], str]:
    index = 30                                  # 1 s in: the card lies still in the middle
    truth = sc.render(index)[1][0]
    return index, truth.quad_px, truth.card_id


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    ga = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    gb = cv2.cvtColor(b, cv2.COLOR_BGR2GRAY).astype(np.float32).ravel()
    return float(np.corrcoef(ga, gb)[0, 1])


def test_a_main_stream_closeup_is_the_card_at_the_main_stream_resolution(catalog: Path) -> None:
    sc = station(catalog)
    index, quad, card_id = _resting_frame(sc)
    image, covered = sc.render_closeup(index, quad, 700, main_scale=3.2)
    assert image.shape == (700, round(700 * 63 / 88), 3)
    assert covered == pytest.approx(200 * 3.2, rel=0.02)        # card_height_px 200 in the frame
    path = next(p for r, p in load_catalog(catalog) if r.card_id == card_id)
    reference = cv2.resize(cv2.imread(str(path)), (image.shape[1], image.shape[0]), interpolation=cv2.INTER_AREA)
    assert _similarity(image, reference) > 0.95
    # the frame's own pixels, upscaled, are much blurrier than the main stream's
    low = cut_closeup(sc.render(index)[0], quad, 700).image_bgr
    sharp = [float(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()) for x in (image, low)]
    assert sharp[0] > 2 * sharp[1]


def test_the_rectification_follows_the_quad_it_is_given(catalog: Path) -> None:
    sc = station(catalog)
    index, quad, _ = _resting_frame(sc)
    true_view, _ = sc.render_closeup(index, quad, 700, main_scale=3.2)
    off = tuple((x + 6.0, y) for x, y in quad)                     # a detector 6 frame pixels off
    shifted, _ = sc.render_closeup(index, off, 700, main_scale=3.2)
    assert _similarity(true_view, shifted) < _similarity(true_view, true_view) - 0.1


def test_a_closeup_outside_the_scene_is_refused(catalog: Path) -> None:
    sc = station(catalog)
    index, quad, _ = _resting_frame(sc)
    with pytest.raises(IndexError, match="outside"):
        sc.render_closeup(sc.frame_count, quad, 700, main_scale=3.2)
    with pytest.raises(ValueError, match="main_scale"):
        sc.render_closeup(index, quad, 700, main_scale=0.5)


def test_only_the_synthetic_source_has_a_main_stream_of_its_own(catalog: Path) -> None:
    assert isinstance(SyntheticSource(station(catalog), 30.0, 0, False, 3.2), MainStreamSource)
    assert not isinstance(VideoSource.__new__(VideoSource), MainStreamSource)


def test_a_closeup_cut_from_a_buffered_frame_is_rectified_and_says_what_it_covered() -> None:
    frame = np.zeros((480, 640, 3), np.uint8)
    cv2.rectangle(frame, (100, 50), (225, 225), (255, 255, 255), -1)        # a 126 x 176 px "card"
    out = cut_closeup(frame, ((99.5, 49.5), (225.5, 49.5), (225.5, 225.5), (99.5, 225.5)), 700)
    assert out.image_bgr.shape == (700, round(700 * 63 / 88), 3)
    assert out.source_card_height_px == pytest.approx(176.0)
    assert out.image_bgr[20:-20, 20:-20].min() > 200                       # all card, no background


@pytest.mark.parametrize(("args", "named"), [
    ((-1, [0.0] * 8, 700), "track id"),
    ((1, [10, 10, 100, 10, 100, 150, 10, 150], 30), "card height"),
    ((1, [10, 10, 100, 10, 100, 150, 10, math.nan], 700), "finite"),
    ((1, [10, 10, 900, 10, 900, 150, 10, 150], 700), "outside"),
    ((1, [10, 10, 10, 10, 10, 10, 10, 10], 700), "degenerate"),
])
def test_a_bad_closeup_request_is_named(args: tuple[int, list[float], int], named: str) -> None:
    track_id, quad, height = args
    problem = closeup_request_problem(track_id, quad, height, 640, 480, 4.0, 2000)
    assert problem is not None and named in problem


def test_a_good_closeup_request_passes() -> None:
    assert closeup_request_problem(3, [10, 10, 100, 10, 100, 150, 10, 150], 700, 640, 480, 4.0, 2000) is None


@pytest.mark.parametrize(("lines", "confidences", "named"), [
    (["a", "b"], [0.9], "2 lines but 1 confidences"),
    (["x" * 300], [0.9], "characters"),
    (["025/165"], [1.5], "confidence"),
    (["025/165"], [math.nan], "confidence"),
    (["l"] * 65, [0.5] * 65, "65 lines"),
])
def test_a_malformed_reading_is_named(lines: list[str], confidences: list[float], named: str) -> None:
    problem = reading_problem(1, lines, confidences)
    assert problem is not None and named in problem
    assert reading_problem(1, ["025/165"], [0.97]) is None


def test_a_reading_with_a_finish_nobody_names_is_refused() -> None:
    problem = reading_problem(1, ["025/165"], [0.97], "sparkly")
    assert problem is not None and "finish 'sparkly'" in problem
    assert all(reading_problem(1, [], [], f) is None for f in ("", "normal", "holo", "reverse_holo", "unknown"))


def _record(card_id: str, **changes: object) -> CardRecord:
    base = CardRecord(card_id=card_id, name="X", set_id=card_id.split("-")[0], number=card_id.split("-")[1],
                      art_id="art-1", set_code=card_id.split("-")[0].upper(), printed_total=165)
    return dataclasses.replace(base, **changes)


def test_matches_carry_the_art_printings_with_their_set_codes_and_totals() -> None:
    printings = (_record("sv1-25"), _record("sv2-7", printed_total=102))
    match = CardMatch(4, MatchBand.AMBIGUOUS, (Candidate(printings[0], 0.05),), 0.01, art_printings=printings)
    msg = conversions.matches_to_msg([match], conversions.header(5, "f"), "db")
    back = conversions.matches_from_msg(msg)[0]
    assert back.art_printings == printings
    assert back.candidates[0].card.set_code == "SV1" and back.candidates[0].card.printed_total == 165


def test_identities_carry_what_was_read() -> None:
    ident = Identity(track_id=2, state=TrackState.CONFIRMED, card=_record("sv1-25"), confidence=1.0, distance_cos=0.1,
                     margin_to_runner_up=0.2, agreeing_views=2, views=3, final=True, reason="r", stamp_ns=7,
                     printing_read=("025/165", "O25/165"), printing_views=3, printing_agreeing_views=2)
    back = conversions.identity_from_msg(conversions.identity_to_msg(ident, "f"))
    assert (back.printing_read, back.printing_views, back.printing_agreeing_views) == (("025/165", "O25/165"), 3, 2)


def test_the_matcher_names_every_printing_of_an_art_with_several(tmp_path: Path) -> None:
    from rosutil import make_world

    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.ros.matcher_node import with_art_printings

    world = make_world(tmp_path, cards=60, seed=3, unknown=0)
    db = ReferenceDatabase.load(world["db"], None, load_settings().matcher.search)
    groups = [cards for cards in db.art_groups().values() if len(cards) > 1]
    assert groups, "the generated catalogue has reprints"
    cards = groups[0]
    best = db.record(cards[0])
    named = with_art_printings(CardMatch(1, MatchBand.AMBIGUOUS, (Candidate(best, 0.05),), 0.01), db)
    assert sorted(r.card_id for r in named.art_printings) == sorted(cards)
    alone = next(c for c in db.card_ids() if all(c not in g for g in groups))
    single = with_art_printings(CardMatch(1, MatchBand.CONFIRMED, (Candidate(db.record(alone), 0.05),), 0.3), db)
    assert single.art_printings == ()
    unknown = with_art_printings(CardMatch(1, MatchBand.UNKNOWN, (Candidate(best, 0.6),), 0.01), db)
    assert unknown.art_printings == ()
