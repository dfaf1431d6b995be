"""The smoother's vote over a track's printing readings (core/smoothing.py with core/printing.py)."""

from __future__ import annotations

import dataclasses

from decisions_support import MS, card, smoother_config, track_end

from cardsorter.core.printing import PrintingConfig, ViewReading, read_lines
from cardsorter.core.smoothing import TemporalSmoother
from cardsorter.core.types import Candidate, CardMatch, CardRecord, MatchBand, TrackState
from cardsorter.settings import load_settings

# One artwork in three sets: only the printed number tells them apart.
A1 = dataclasses.replace(card("s1-25", art_id="art-x"), printed_total=165, set_code="S1")
A2 = dataclasses.replace(card("s2-7", art_id="art-x"), printed_total=102, set_code="S2")
A3 = dataclasses.replace(card("s3-118", art_id="art-x"), printed_total=190, set_code="S3")
PRINTINGS = (A1, A2, A3)
B = card("s1-2")


def printing(**changes: object) -> PrintingConfig:
    return dataclasses.replace(load_settings().smoother.printing, **changes)


def art_match(track_id: int, band: MatchBand, best: CardRecord, runner: CardRecord | None = None) -> CardMatch:
    cands = (Candidate(best, 0.05),) + ((Candidate(runner, 0.06),) if runner is not None else ())
    return CardMatch(track_id, band, cands, 0.01 if runner is not None else 0.3, art_printings=PRINTINGS)


def read(text: str) -> ViewReading:
    return read_lines([(text, 0.95)] if text else [])


def ambiguous_track(sm: TemporalSmoother, track_id: int = 1) -> None:
    """Two AMBIGUOUS-band views (the art is known, its printings are too close to call)."""
    sm.track_seen(track_id, 0)
    for i in (1, 2):
        sm.observe([art_match(track_id, MatchBand.AMBIGUOUS, A1 if i == 1 else A2, A2 if i == 1 else A1)], i * 33 * MS)


def test_two_readings_of_one_printing_confirm_an_ambiguous_track_as_that_printing() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    ambiguous_track(sm)
    assert sm.state_of(1) == TrackState.AMBIGUOUS
    first = sm.observe_reading(1, read("S2 EN 007/102"), 100 * MS)
    assert first[0].state == TrackState.AMBIGUOUS and "1 of 1 views, 2 needed" in first[0].reason
    second = sm.observe_reading(1, read("EN 007/102"), 200 * MS)
    ident = second[0]
    assert ident.state == TrackState.CONFIRMED and ident.card == A2
    assert ident.printing_read == ("007/102",) and ident.printing_views == 2 and ident.printing_agreeing_views == 2
    assert "printed number" in ident.reason
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.final and final.card == A2 and "read in 2 of 2 views" in final.reason


def test_one_reading_is_never_enough() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    ambiguous_track(sm)
    sm.observe_reading(1, read("007/102"), 100 * MS)
    sm.observe_reading(1, read(""), 200 * MS)
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.state == TrackState.AMBIGUOUS and final.printing_views == 2


def test_readings_that_name_two_printings_leave_the_track_ambiguous() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    ambiguous_track(sm)
    for i, text in enumerate(("007/102", "025/165", "007/102")):
        sm.observe_reading(1, read(text), (100 + i) * MS)
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.state == TrackState.AMBIGUOUS
    assert "several printings" in final.reason and set(final.printing_read) == {"007/102", "025/165"}


def test_readings_that_contradict_the_confirmed_printing_make_it_ambiguous_for_good() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3), printing())
    sm.track_seen(1, 0)
    for i in range(1, 4):
        sm.observe([art_match(1, MatchBand.CONFIRMED, A1)], i * 33 * MS)
    assert sm.state_of(1) == TrackState.CONFIRMED
    sm.observe_reading(1, read("118/190"), 150 * MS)
    sm.observe_reading(1, read("118/190"), 160 * MS)
    assert sm.state_of(1) == TrackState.AMBIGUOUS
    for i in range(5, 9):           # more confirmed views of A1 do not bring it back
        sm.observe([art_match(1, MatchBand.CONFIRMED, A1)], i * 33 * MS)
    final = sm.end_track(track_end(1, 400 * MS))
    assert final is not None and final.state == TrackState.AMBIGUOUS    # to review: the art, not the printing
    assert "confirmed s1-25, its printing reads s3-118" in final.reason


def test_readings_that_agree_with_the_confirmed_printing_are_counted() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3), printing())
    sm.track_seen(1, 0)
    for i in range(1, 4):
        sm.observe([art_match(1, MatchBand.CONFIRMED, A1)], i * 33 * MS)
    sm.observe_reading(1, read("025/165"), 150 * MS)
    sm.observe_reading(1, read("O25/l65"), 160 * MS)    # look-alikes read as digits
    final = sm.end_track(track_end(1, 400 * MS))
    assert final is not None and final.state == TrackState.CONFIRMED and final.card == A1
    assert final.printing_agreeing_views == 2 and "read in 2 of 2 views" in final.reason


def test_a_variant_sharing_the_printed_number_keeps_the_track_ambiguous() -> None:
    base = dataclasses.replace(card("s4-12", art_id="art-y"), printed_total=80)
    reverse = dataclasses.replace(card("s4-12rh", number="12rh", art_id="art-y", finish="reverse_holo"),
                                  printed_total=80)
    sm = TemporalSmoother(smoother_config(), printing())
    sm.track_seen(1, 0)
    for i, (best, runner) in enumerate(((base, reverse), (reverse, base)), start=1):
        sm.observe([CardMatch(1, MatchBand.AMBIGUOUS, (Candidate(best, 0.05), Candidate(runner, 0.06)), 0.01,
                              art_printings=(base, reverse))], i * 33 * MS)
    for i in range(3):
        sm.observe_reading(1, read("012/080"), (100 + i) * MS)
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.state == TrackState.AMBIGUOUS and "several printings" in final.reason


def test_a_station_waits_for_the_readings_before_its_final() -> None:
    sm = TemporalSmoother(smoother_config(finalize_on_confirm=True), printing(views_max=3))
    sm.track_seen(1, 0)
    out = []
    for i in (1, 2):
        out += sm.observe([art_match(1, MatchBand.AMBIGUOUS, A1, A2)], i * 33 * MS)
    assert sm.state_of(1) == TrackState.AMBIGUOUS and not any(i.final for i in out)
    assert not sm.observe_reading(1, read("025/165"), 100 * MS)[0].final
    finals = sm.observe_reading(1, read("025/165"), 200 * MS)
    assert finals[0].final and finals[0].state == TrackState.CONFIRMED and finals[0].card == A1


def test_a_station_gives_up_after_views_max_unreadable_closeups() -> None:
    sm = TemporalSmoother(smoother_config(finalize_on_confirm=True), printing(views_max=2))
    ambiguous_track(sm)
    assert not sm.observe_reading(1, read(""), 100 * MS)[0].final
    final = sm.observe_reading(1, read(""), 200 * MS)[0]
    assert final.final and final.state == TrackState.AMBIGUOUS and "no collector number read in 2 views" in final.reason


def test_without_a_reader_an_ambiguous_station_card_is_final_at_once() -> None:
    sm = TemporalSmoother(smoother_config(finalize_on_confirm=True), printing(views_max=0))
    sm.track_seen(1, 0)
    out = []
    for i in (1, 2):
        out += sm.observe([art_match(1, MatchBand.AMBIGUOUS, A1, A2)], i * 33 * MS)
    assert out[-1].final and out[-1].state == TrackState.AMBIGUOUS


def test_a_printing_decided_by_its_number_does_not_flip_to_another_printing() -> None:
    sm = TemporalSmoother(smoother_config(flip_views=2), printing())
    ambiguous_track(sm)
    sm.observe_reading(1, read("118/190"), 100 * MS)
    sm.observe_reading(1, read("118/190"), 110 * MS)
    assert sm.state_of(1) == TrackState.CONFIRMED
    for i in range(5, 10):
        sm.observe([art_match(1, MatchBand.CONFIRMED, A1)], i * 33 * MS)
    final = sm.end_track(track_end(1, 400 * MS))
    assert final is not None and final.card == A3


def test_a_card_of_another_art_is_not_confirmed_by_a_reading() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    sm.track_seen(1, 0)
    sm.observe([CardMatch(1, MatchBand.UNCERTAIN, (Candidate(B, 0.3),), 0.02)], 33 * MS)
    sm.observe_reading(1, read("002/080"), 100 * MS)
    sm.observe_reading(1, read("002/080"), 110 * MS)
    assert sm.state_of(1) != TrackState.CONFIRMED


def test_a_reading_after_the_track_ended_is_ignored_and_counted() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    ambiguous_track(sm)
    sm.end_track(track_end(1, 300 * MS))
    assert sm.observe_reading(1, read("007/102"), 400 * MS) == []
    assert sm.late_readings_ignored == 1


# One number in two finishes: the normal printing and its reverse holo (catalogue ids 21 and 21rh).
N21 = dataclasses.replace(card("s1-21", art_id="art-y"), printed_total=165, finish="normal")
R21 = dataclasses.replace(card("s1-21rh", art_id="art-y"), number="21rh", printed_total=165, finish="reverse_holo")


def finish_read(text: str, finish: str, views: int) -> ViewReading:
    return dataclasses.replace(read(text), finish=finish, finish_views=views)


def finish_track(sm: TemporalSmoother) -> None:
    sm.track_seen(1, 0)
    for i in (1, 2):
        sm.observe([CardMatch(1, MatchBand.AMBIGUOUS, (Candidate(N21, 0.05), Candidate(R21, 0.055)), 0.005,
                              art_printings=(N21, R21))], i * 33 * MS)


def test_the_finish_seen_picks_between_printings_whose_number_reads_alike() -> None:
    sm = TemporalSmoother(smoother_config(), printing())
    finish_track(sm)
    sm.observe_reading(1, finish_read("021/165", "unknown", 1), 100 * MS)
    sm.observe_reading(1, finish_read("021/165", "reverse_holo", 2), 200 * MS)
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.state == TrackState.CONFIRMED and final.card == R21
    assert final.finish_seen == "reverse_holo" and final.finish_views == 2
    assert "reverse holo of the printings read alike" in final.reason


def test_without_a_finish_printings_whose_number_reads_alike_stay_ambiguous() -> None:
    for seen in ("", "unknown", "holo"):           # holo: neither printing is one
        sm = TemporalSmoother(smoother_config(), printing())
        finish_track(sm)
        sm.observe_reading(1, finish_read("021/165", seen, 2 if seen else 0), 100 * MS)
        sm.observe_reading(1, finish_read("021/165", seen, 3 if seen else 0), 200 * MS)
        final = sm.end_track(track_end(1, 300 * MS))
        assert final is not None and final.state == TrackState.AMBIGUOUS, seen
        assert "several printings" in final.reason


def test_a_record_of_several_finishes_is_sorted_with_the_one_seen_or_unknown() -> None:
    multi = dataclasses.replace(card("s4-9"), finish="normal", finishes=("normal", "holo", "reverse_holo"))
    for seen, want in (("holo", "holo"), ("normal", "normal"), ("unknown", "unknown"), ("", "unknown")):
        sm = TemporalSmoother(smoother_config(confirm_views=2), printing())
        sm.track_seen(1, 0)
        sm.observe_reading(1, finish_read("", seen, 2 if seen else 0), 10 * MS)
        for i in (1, 2):
            sm.observe([CardMatch(1, MatchBand.CONFIRMED, (Candidate(multi, 0.05),), 0.3)], i * 33 * MS)
        final = sm.end_track(track_end(1, 300 * MS))
        assert final is not None and final.state == TrackState.CONFIRMED and final.card is not None
        assert final.card.finish == want, seen
