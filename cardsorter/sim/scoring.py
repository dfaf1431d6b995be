"""Score a run against the simulator's ground truth: which physical card each track was, and the outcome."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cardsorter.core.types import BoxPx

# A track belongs to the physical card it overlaps most, if the overlap is at least this IoU.
TRACK_TO_TRUTH_IOU_MIN = 0.3


@dataclass(frozen=True)
class TruthCard:
    physical_id: int
    card_id: str
    in_database: bool
    box: BoxPx
    nuisances: tuple[str, ...] = ()


MISSED_GATE = "missed the gate"   # how the sorter's reason starts when a card passed its gate unsorted


@dataclass(frozen=True)
class SortedCard:
    track_id: int
    status: str           # confirmed | unknown | ambiguous | unconfirmed
    card_id: str
    bin_name: str
    reason: str = ""


@dataclass(frozen=True)
class CardOutcome:
    physical_id: int
    truth_card_id: str
    in_database: bool
    nuisances: tuple[str, ...]
    track_ids: tuple[int, ...]
    outcome: str          # correct | wrong_printing | wrong_card | ambiguous_printing | rejected | false_accept
                          # | correct_reject | double_feed_rejected | double_feed_accepted | missed
    sorted_as: str
    bin_name: str
    status: str
    missed_gate: bool = False   # decided for a bin, but it reached the gate too late: in the passthrough bin


@dataclass
class Score:
    outcomes: list[CardOutcome] = field(default_factory=list)
    phantom_tracks: list[int] = field(default_factory=list)   # tracks that match no physical card

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    @property
    def physical_cards(self) -> int:
        return len(self.outcomes)

    @property
    def known(self) -> int:
        """Single cards that are in the database (double feeds are scored on their own)."""
        return sum(1 for o in self.outcomes if o.in_database and "double_feed" not in o.nuisances)

    @property
    def unknown(self) -> int:
        return sum(1 for o in self.outcomes if not o.in_database and "double_feed" not in o.nuisances)

    def summary(self) -> dict[str, float | int]:
        known = max(1, self.known)
        unknown = max(1, self.unknown)
        wrong = self.count("wrong_printing") + self.count("wrong_card")
        return {
            "physical_cards": self.physical_cards, "known_cards": self.known, "unknown_cards": self.unknown,
            "correct": self.count("correct"), "wrong_printing": self.count("wrong_printing"),
            "wrong_card": self.count("wrong_card"), "ambiguous_printing": self.count("ambiguous_printing"),
            "rejected_known": self.count("rejected"),
            "missed": self.count("missed"), "correct_reject_unknown": self.count("correct_reject"),
            "false_accept_unknown": self.count("false_accept"), "phantom_tracks": len(self.phantom_tracks),
            "double_feeds": self.count("double_feed_rejected") + self.count("double_feed_accepted"),
            "double_feeds_rejected": self.count("double_feed_rejected"),
            "split_cards": sum(1 for o in self.outcomes if len(o.track_ids) > 1),
            "missed_gate": sum(1 for o in self.outcomes if o.missed_gate),
            "accuracy_known": self.count("correct") / known,
            "error_rate_known": wrong / known,
            "reject_rate_known": (self.count("rejected") + self.count("ambiguous_printing")) / known,
            "false_accept_rate_unknown": self.count("false_accept") / unknown,
        }


def assign_tracks(truth_by_stamp: Mapping[int, Sequence[TruthCard]],
                  tracks_by_stamp: Mapping[int, Sequence[tuple[int, BoxPx]]]) -> dict[int, int]:
    """track_id → physical_id by majority vote over the frames both saw (IoU ≥ TRACK_TO_TRUTH_IOU_MIN)."""
    votes: dict[int, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for stamp, tracks in tracks_by_stamp.items():
        truths = truth_by_stamp.get(stamp, ())
        for track_id, box in tracks:
            best = max(truths, key=lambda t: t.box.iou(box), default=None)
            if best is not None and best.box.iou(box) >= TRACK_TO_TRUTH_IOU_MIN:
                votes[track_id][best.physical_id] += 1
    return {tid: c.most_common(1)[0][0] for tid, c in votes.items()}


def score_run(truth_by_stamp: Mapping[int, Sequence[TruthCard]],
              tracks_by_stamp: Mapping[int, Sequence[tuple[int, BoxPx]]],
              sorted_cards: Iterable[SortedCard], art_of: Mapping[str, str] | None = None) -> Score:
    """Outcome per physical card. A card seen as several tracks is scored on its first decided track."""
    art_of = art_of or {}
    truths: dict[int, TruthCard] = {}
    for cards in truth_by_stamp.values():
        for t in cards:
            truths.setdefault(t.physical_id, t)
    track_to_phys = assign_tracks(truth_by_stamp, tracks_by_stamp)
    by_phys: dict[int, list[SortedCard]] = collections.defaultdict(list)
    score = Score()
    for sc in sorted(sorted_cards, key=lambda s: s.track_id):
        phys = track_to_phys.get(sc.track_id)
        if phys is None:
            score.phantom_tracks.append(sc.track_id)
        else:
            by_phys[phys].append(sc)
    for phys, truth in sorted(truths.items()):
        decided = by_phys.get(phys, [])
        if not decided:
            score.outcomes.append(CardOutcome(phys, truth.card_id, truth.in_database, truth.nuisances, (), "missed",
                                              "", "", ""))
            continue
        first = decided[0]
        confirmed = first.status == "confirmed"
        same_art = art_of.get(first.card_id) is not None and art_of.get(first.card_id) == art_of.get(truth.card_id)
        if "double_feed" in truth.nuisances:
            outcome = "double_feed_rejected" if not confirmed else "double_feed_accepted"
        elif truth.in_database:
            if first.status == "ambiguous" and same_art:
                outcome = "ambiguous_printing"   # the right art; which printing was refused, not guessed
            elif not confirmed:
                outcome = "rejected"
            elif first.card_id == truth.card_id:
                outcome = "correct"
            elif same_art:
                outcome = "wrong_printing"
            else:
                outcome = "wrong_card"
        else:
            outcome = "false_accept" if confirmed else "correct_reject"
        score.outcomes.append(CardOutcome(phys, truth.card_id, truth.in_database, truth.nuisances,
                                          tuple(s.track_id for s in decided), outcome, first.card_id,
                                          first.bin_name, first.status, first.reason.startswith(MISSED_GATE)))
    return score
