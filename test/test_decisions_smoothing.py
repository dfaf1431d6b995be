"""Temporal smoother: state-machine transitions per track."""

from __future__ import annotations

import pytest
from decisions_support import MS, card, match, smoother_config, track_end

from cardsorter.core.smoothing import TemporalSmoother
from cardsorter.core.types import MatchBand, TrackState

A = card("s1-1", art_id="art-x")
A_REPRINT = card("s2-7", art_id="art-x")       # another printing of A's art
B = card("s1-2")
C = card("s1-3")


def feed(sm: TemporalSmoother, track_id: int, views: list[tuple[MatchBand, object]], start: int = 1) -> list:
    out = []
    for i, (band, c) in enumerate(views, start=start):
        out += sm.observe([match(track_id, band, c)], i * 33 * MS)
    return out


def test_config_from_yaml_requires_three_views_by_default() -> None:
    assert smoother_config().confirm_views == 3


def test_new_track_is_detecting() -> None:
    sm = TemporalSmoother(smoother_config())
    ident = sm.track_seen(1, 0)
    assert ident is not None and ident.state == TrackState.DETECTING and not ident.final
    assert sm.track_seen(1, 5) is None            # not a change


def test_three_agreeing_views_confirm() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    sm.track_seen(1, 0)
    changes = feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    assert [c.state for c in changes] == [TrackState.STABILIZING, TrackState.CONFIRMED]
    assert changes[-1].card == A and changes[-1].agreeing_views == 3 and not changes[-1].final
    assert sm.is_settled(1)


def test_two_agreeing_views_do_not_confirm() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 2)
    assert sm.state_of(1) == TrackState.STABILIZING
    assert not sm.is_settled(1)


def test_disagreement_resets_the_run() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A), (MatchBand.CONFIRMED, A), (MatchBand.CONFIRMED, B),
                 (MatchBand.CONFIRMED, A), (MatchBand.CONFIRMED, A)])
    assert sm.state_of(1) == TrackState.STABILIZING          # A, A, B, A, A: never 3 in a row
    feed(sm, 1, [(MatchBand.CONFIRMED, A)], start=6)
    assert sm.state_of(1) == TrackState.CONFIRMED


def test_uncertain_view_of_another_card_resets_but_of_the_same_card_does_not() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A), (MatchBand.UNCERTAIN, A), (MatchBand.CONFIRMED, A),
                 (MatchBand.CONFIRMED, A)])
    assert sm.state_of(1) == TrackState.CONFIRMED
    feed(sm, 2, [(MatchBand.CONFIRMED, A), (MatchBand.CONFIRMED, A), (MatchBand.UNCERTAIN, B),
                 (MatchBand.CONFIRMED, A)])
    assert sm.state_of(2) == TrackState.STABILIZING


def test_views_from_the_same_frame_count_once() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    for _ in range(5):
        sm.observe([match(1, MatchBand.CONFIRMED, A)], 100 * MS)
    assert sm.state_of(1) == TrackState.STABILIZING
    assert sm.duplicate_views_ignored == 4


def test_unknown_after_m_unknown_views() -> None:
    sm = TemporalSmoother(smoother_config(unknown_views=3))
    changes = feed(sm, 1, [(MatchBand.UNKNOWN, None)] * 3)
    assert changes[-1].state == TrackState.UNKNOWN
    final = sm.end_track(track_end(1, 200 * MS))
    assert final is not None and final.final and final.state == TrackState.UNKNOWN
    assert final.reason.startswith("unknown")


def test_ambiguous_when_views_land_on_printings_of_one_art() -> None:
    sm = TemporalSmoother(smoother_config(ambiguous_views=2, confirm_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A), (MatchBand.CONFIRMED, A_REPRINT), (MatchBand.CONFIRMED, A),
                 (MatchBand.CONFIRMED, A_REPRINT)])
    assert sm.state_of(1) == TrackState.AMBIGUOUS


def test_ambiguous_band_views_make_the_track_ambiguous() -> None:
    sm = TemporalSmoother(smoother_config(ambiguous_views=2))
    feed(sm, 1, [(MatchBand.AMBIGUOUS, A), (MatchBand.AMBIGUOUS, A)])
    assert sm.state_of(1) == TrackState.AMBIGUOUS


def test_track_lost_before_confirmation_is_final_unconfirmed() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    sm.track_seen(1, 0)
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 2)
    final = sm.end_track(track_end(1, 100 * MS))
    assert final is not None and final.final
    assert final.state == TrackState.STABILIZING and final.card == A
    assert final.reason.startswith("never confirmed")


def test_track_with_no_views_ends_unconfirmed() -> None:
    sm = TemporalSmoother(smoother_config())
    sm.track_seen(4, 0)
    final = sm.end_track(track_end(4, 10 * MS))
    assert final is not None and final.state == TrackState.DETECTING and final.card is None


def test_final_identity_exactly_once() -> None:
    sm = TemporalSmoother(smoother_config())
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    first = sm.end_track(track_end(1, 200 * MS))
    assert first is not None and first.final and first.state == TrackState.CONFIRMED
    assert sm.end_track(track_end(1, 300 * MS)) is None


def test_late_matches_after_the_end_are_ignored() -> None:
    sm = TemporalSmoother(smoother_config())
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    sm.end_track(track_end(1, 200 * MS))
    assert sm.observe([match(1, MatchBand.CONFIRMED, B)], 300 * MS) == []
    assert sm.late_matches_ignored == 1


def test_late_disagreeing_views_after_confirmation_are_counted_not_flipped() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, flip_views=4))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    changes = feed(sm, 1, [(MatchBand.CONFIRMED, B)] * 3 + [(MatchBand.UNKNOWN, None)], start=4)
    assert changes == []                                    # no flicker
    final = sm.end_track(track_end(1, 300 * MS))
    assert final is not None and final.card == A and final.state == TrackState.CONFIRMED
    assert final.views == 7 and final.agreeing_views == 3


def test_strong_late_evidence_flips_when_configured() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, flip_views=4))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    changes = feed(sm, 1, [(MatchBand.CONFIRMED, B)] * 4, start=4)
    assert len(changes) == 1 and changes[0].card == B and changes[0].state == TrackState.CONFIRMED


def test_agreeing_view_breaks_a_flip_run() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, flip_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    feed(sm, 1, [(MatchBand.CONFIRMED, B), (MatchBand.CONFIRMED, B), (MatchBand.CONFIRMED, A),
                 (MatchBand.CONFIRMED, B), (MatchBand.CONFIRMED, B)], start=4)
    final = sm.end_track(track_end(1, 500 * MS))
    assert final is not None and final.card == A


@pytest.mark.parametrize("flip_views", [0, 2])
def test_flip_zero_never_flips(flip_views: int) -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=2, flip_views=flip_views))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 2 + [(MatchBand.CONFIRMED, C)] * 6)
    final = sm.end_track(track_end(1, 500 * MS))
    assert final is not None and final.card == (A if flip_views == 0 else C)


def test_finalize_on_confirm_publishes_the_final_at_confirmation() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, finalize_on_confirm=True, flip_views=2))
    changes = feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    assert changes[-1].final and changes[-1].state == TrackState.CONFIRMED
    assert feed(sm, 1, [(MatchBand.CONFIRMED, B)] * 3, start=4) == []    # no flip after the final went out
    assert sm.end_track(track_end(1, 300 * MS)) is None


def test_double_feed_is_named_in_the_final_reason() -> None:
    sm = TemporalSmoother(smoother_config())
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 3)
    final = sm.end_track(track_end(1, 200 * MS, double_feed=True))
    assert final is not None and final.reason.startswith("double feed")


def test_tracks_are_independent() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=2))
    for i in range(1, 3):
        sm.observe([match(1, MatchBand.CONFIRMED, A), match(2, MatchBand.UNKNOWN, None)], i * 33 * MS)
    assert sm.state_of(1) == TrackState.CONFIRMED
    assert sm.state_of(2) == TrackState.DETECTING


def test_confidence_is_the_share_of_agreeing_views() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=2, flip_views=0))
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 2 + [(MatchBand.CONFIRMED, B)] * 2)
    final = sm.end_track(track_end(1, 200 * MS))
    assert final is not None and final.confidence == pytest.approx(0.5)


def test_unconfirmed_identity_reports_the_distance_of_its_candidate_views() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3))
    sm.observe([match(1, MatchBand.UNCERTAIN, A, distance=0.3, margin=0.05)], 33 * MS)
    sm.observe([match(1, MatchBand.UNCERTAIN, A, distance=0.5, margin=0.07)], 66 * MS)
    final = sm.end_track(track_end(1, 100 * MS))
    assert final is not None and final.card == A and final.agreeing_views == 0
    assert final.distance_cos == pytest.approx(0.4) and final.margin_to_runner_up == pytest.approx(0.06)


def test_a_view_naming_no_card_does_not_reset_the_run() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, unknown_views=3))
    feed(sm, 1, [(MatchBand.CONFIRMED, A), (MatchBand.UNKNOWN, None), (MatchBand.CONFIRMED, A),
                 (MatchBand.UNKNOWN, None), (MatchBand.CONFIRMED, A)])
    assert sm.state_of(1) == TrackState.CONFIRMED


def test_ambiguity_is_not_overridden_by_later_confident_views() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, ambiguous_views=2))
    feed(sm, 1, [(MatchBand.AMBIGUOUS, A), (MatchBand.AMBIGUOUS, A)])
    assert sm.is_settled(1)                       # ambiguous for good: no more views needed
    feed(sm, 1, [(MatchBand.CONFIRMED, A)] * 5, start=3)
    final = sm.end_track(track_end(1, 500 * MS))
    assert final is not None and final.state == TrackState.AMBIGUOUS


def test_unknown_track_can_still_be_confirmed_by_enough_views() -> None:
    sm = TemporalSmoother(smoother_config(confirm_views=3, unknown_views=2))
    feed(sm, 1, [(MatchBand.UNKNOWN, None)] * 2)
    assert sm.state_of(1) == TrackState.UNKNOWN
    feed(sm, 1, [(MatchBand.CONFIRMED, B)] * 3, start=3)
    assert sm.state_of(1) == TrackState.CONFIRMED


def test_finalize_on_confirm_also_finalizes_ambiguous_tracks() -> None:
    sm = TemporalSmoother(smoother_config(finalize_on_confirm=True, ambiguous_views=2))
    changes = feed(sm, 1, [(MatchBand.AMBIGUOUS, A)] * 2)
    assert changes[-1].final and changes[-1].state == TrackState.AMBIGUOUS
    assert sm.end_track(track_end(1, 100 * MS)) is None
