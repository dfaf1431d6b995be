"""Scoring a run against ground truth: tracks are matched to physical cards, outcomes are named."""

from __future__ import annotations

from cardsorter.core.types import BoxPx
from cardsorter.sim.scoring import SortedCard, TruthCard, assign_tracks, score_run

A = BoxPx(0, 0, 10, 14)
B = BoxPx(100, 0, 10, 14)


def truth(pid: int, card: str, box: BoxPx, in_db: bool = True) -> TruthCard:
    return TruthCard(pid, card, in_db, box)


def test_tracks_are_assigned_by_majority_overlap() -> None:
    truths = {1: [truth(1, "a", A), truth(2, "b", B)], 2: [truth(1, "a", A), truth(2, "b", B)]}
    tracks = {1: [(7, A), (8, B)], 2: [(7, A), (8, BoxPx(101, 0, 10, 14))]}
    assert assign_tracks(truths, tracks) == {7: 1, 8: 2}


def test_each_outcome_is_named() -> None:
    boxes = [BoxPx(i * 50, 0, 10, 14) for i in range(7)]
    truths = {1: [truth(1, "a", boxes[0]), truth(2, "b", boxes[1]), truth(3, "c", boxes[2]),
                  truth(4, "x", boxes[3], in_db=False), truth(5, "y", boxes[4], in_db=False),
                  truth(6, "d", boxes[5]), truth(7, "b", boxes[6])]}
    tracks = {1: [(i + 1, boxes[i]) for i in range(5)] + [(7, boxes[6]), (99, BoxPx(500, 500, 5, 5))]}
    sorted_cards = [SortedCard(1, "confirmed", "a", "bin1"), SortedCard(2, "confirmed", "b2", "bin1"),
                    SortedCard(3, "unknown", "", "reject"), SortedCard(4, "unknown", "", "reject"),
                    SortedCard(5, "confirmed", "z", "bin2"), SortedCard(7, "ambiguous", "b2", "reject"),
                    SortedCard(99, "unconfirmed", "", "reject")]
    score = score_run(truths, tracks, sorted_cards, art_of={"b": "art-b", "b2": "art-b"})
    outcomes = {o.physical_id: o.outcome for o in score.outcomes}
    assert outcomes == {1: "correct", 2: "wrong_printing", 3: "rejected", 4: "correct_reject",
                        5: "false_accept", 6: "missed", 7: "ambiguous_printing"}
    assert score.phantom_tracks == [99]
    s = score.summary()
    assert s["accuracy_known"] == 1 / 5 and s["false_accept_rate_unknown"] == 1 / 2


def test_a_double_feed_is_right_when_rejected() -> None:
    truths = {1: [TruthCard(1, "a", True, A, ("double_feed",)), TruthCard(2, "b", True, B)]}
    tracks = {1: [(1, A), (2, B)]}
    score = score_run(truths, tracks, [SortedCard(1, "unconfirmed", "", "reject"), SortedCard(2, "confirmed", "b", "x")])
    assert [o.outcome for o in score.outcomes] == ["double_feed_rejected", "correct"]
    assert score.summary()["known_cards"] == 1 and score.summary()["accuracy_known"] == 1.0


def test_a_card_that_missed_its_gate_is_counted_apart() -> None:
    truths = {1: [truth(1, "a", A), truth(2, "b", B)]}
    tracks = {1: [(1, A), (2, B)]}
    score = score_run(truths, tracks, [SortedCard(1, "confirmed", "a", "reject", "missed the gate of bin3; rarity"),
                                       SortedCard(2, "confirmed", "b", "bin1", "rarity")])
    assert [o.outcome for o in score.outcomes] == ["correct", "correct"]   # identified right either way
    assert [o.missed_gate for o in score.outcomes] == [True, False] and score.summary()["missed_gate"] == 1
