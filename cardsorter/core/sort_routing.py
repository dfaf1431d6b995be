"""Where each card goes: final identities and track ends → one SortDecision per track, naming its bin."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from cardsorter.core.bin_rules import CATEGORY_FIELDS, SortRules
from cardsorter.core.types import (
    UNKNOWN_FINISH,
    CardRecord,
    Identity,
    SortDecision,
    SortStatus,
    TrackEnd,
    TrackState,
)


@dataclass(frozen=True)
class Route:
    """Where a card goes and why; ``assign`` is a new per-category bin assignment to record."""

    bin_name: str
    reason: str
    rule_index: int | None
    assign: tuple[int, str, str] | None = None   # (rule index, category, bin)
    bin_full: bool = False                        # even the reject bin is full: pause before this card
    counts_copy: bool = False                     # a confirmed card: counts toward copies_beyond


@dataclass
class RoutingState:
    """What routing has decided so far this session: cards per bin, copies per card, presets' bins."""

    fill: Counter[str] = field(default_factory=Counter)
    copies: Counter[str] = field(default_factory=Counter)
    assignments: dict[int, dict[str, str]] = field(default_factory=dict)

    def record(self, route: Route, card: CardRecord | None) -> None:
        self.fill[route.bin_name] += 1
        if route.counts_copy and card is not None:
            self.copies[card.card_id] += 1
        if route.assign is not None:
            rule_index, category, bin_name = route.assign
            self.assignments.setdefault(rule_index, {})[category] = bin_name

    def moved(self, from_bin: str, to_bin: str) -> None:
        """A card routed to ``from_bin`` ended in ``to_bin`` (it missed its gate)."""
        self.fill[from_bin] -= 1
        self.fill[to_bin] += 1

    def empty_bin(self, bin_name: str, still_coming: int = 0) -> None:
        """The user emptied a bin: its count starts again from the ``still_coming`` cards routed to it
        but not yet there."""
        self.fill[bin_name] = still_coming


def route_card(rules: SortRules, card: CardRecord | None, status: SortStatus, double_feed: bool,
               state: RoutingState, why: str = "") -> Route:
    """The bin for one card. Only a confirmed, single card reaches the rules; the rest → reject."""
    if double_feed:
        return _reject(rules, _prefixed("double feed", why), state)
    if status != SortStatus.CONFIRMED or card is None:
        return _reject(rules, _prefixed(status.value, why), state)
    copies_before = state.copies[card.card_id]
    for rule in rules.rules:
        if not rule.condition.matches(card, copies_before):
            continue
        if rule.category_key is None:
            return _fit(rules, rule.bin_name, f"{rule.where}", rule.index, None, state)
        category = CATEGORY_FIELDS[rule.category_key].category_of(card)
        assigned = state.assignments.get(rule.index, {})
        if category in assigned:
            return _fit(rules, assigned[category], f"{rule.category_key} {category}: {rule.where}",
                        rule.index, None, state)
        free = [b for b in rule.bins if b not in assigned.values()]
        if free:
            return _fit(rules, free[0], f"{rule.category_key} {category} takes a new bin: {rule.where}",
                        rule.index, (rule.index, category, free[0]), state)
        # every bin of this preset holds another category: fall through to later rules
    return _fit(rules, rules.default_bin, "no rule matched", None, None, state)


def _fit(rules: SortRules, bin_name: str, reason: str, rule_index: int | None,
         assign: tuple[int, str, str] | None, state: RoutingState) -> Route:
    if state.fill[bin_name] < rules.bins[bin_name].capacity:
        return Route(bin_name, reason, rule_index, assign, counts_copy=True)
    overflow = rules.overflow_bin
    if bin_name != overflow and state.fill[overflow] < rules.bins[overflow].capacity:
        return Route(overflow, f"{reason}; bin {bin_name} full → overflow", rule_index, None, counts_copy=True)
    return _reject(rules, f"{reason}; bin {bin_name} and overflow {overflow} full", state, counts_copy=True)


def _reject(rules: SortRules, reason: str, state: RoutingState, counts_copy: bool = False) -> Route:
    full = state.fill[rules.reject_bin] >= rules.bins[rules.reject_bin].capacity
    return Route(rules.reject_bin, reason, None, None, bin_full=full, counts_copy=counts_copy)


def _prefixed(head: str, why: str) -> str:
    """"unknown: 3 views ..." — without repeating a head the reason already starts with."""
    if not why:
        return head
    return why if why.startswith(head) else f"{head}: {why}"


def status_of(identity: Identity) -> SortStatus:
    """The sort status a final identity stands for (anything short of a decision is unconfirmed)."""
    return {TrackState.CONFIRMED: SortStatus.CONFIRMED, TrackState.UNKNOWN: SortStatus.UNKNOWN,
            TrackState.AMBIGUOUS: SortStatus.AMBIGUOUS}.get(identity.state, SortStatus.UNCONFIRMED)


@dataclass(frozen=True)
class Routed:
    """One decision, with what the gate schedule needs to time it."""

    decision: SortDecision
    end: TrackEnd | None           # flow: the card's last position and speed
    encoder_ticks: int | None      # the encoder count at the track's last stamp (encoder mode)
    reject_bin_full: bool          # the card goes to a full reject bin: the sorter pauses


class TrackRouter:
    """Every track id gets exactly one SortDecision: from its final identity (station: at once; flow:
    once its TrackEnd gives the card's position), or a reject when the identity never arrives within
    ``identity_grace_ms`` of the track's end (station: decided as it stands after ``station_timeout_ms``).
    Time is an input. While the sorter is stopped a track is refused for good (its card goes by unsorted).
    """

    def __init__(self, rules: SortRules, station: bool, identity_grace_ms: float, station_timeout_ms: float,
                 initial_fill: Mapping[str, int] | None = None) -> None:
        self._rules = rules
        self._station = station
        self._grace_ns = int(identity_grace_ms * 1e6)
        self._timeout_ns = int(station_timeout_ms * 1e6)
        self.state = RoutingState()
        for name, count in (initial_fill or {}).items():
            if name not in rules.bins:
                raise ValueError(f"initial fill names bin {name!r}, which is not in {rules.path}")
            self.state.fill[name] = count
        self._first_seen: dict[int, int] = {}
        self._latest: dict[int, Identity] = {}
        self._final: dict[int, Identity] = {}
        self._ends: dict[int, tuple[TrackEnd, int | None]] = {}
        self._end_seen_ns: dict[int, int] = {}
        self._decided: set[int] = set()
        self._refused: set[int] = set()

    @property
    def undecided_tracks(self) -> int:
        return len((set(self._first_seen) | set(self._final) | set(self._ends)) - self._decided)

    @property
    def refused_tracks(self) -> tuple[int, ...]:
        return tuple(sorted(self._refused))

    def on_identity(self, identity: Identity, stopped: bool = False) -> list[Routed]:
        """Any identity: non-final ones are remembered (station timeout); a final one decides."""
        tid = identity.track_id
        if tid in self._decided or self._refuse(tid, stopped):
            return []
        self._first_seen.setdefault(tid, identity.stamp_ns)
        self._latest[tid] = identity
        if not identity.final:
            return []
        self._final[tid] = identity
        if tid in self._ends:
            end, ticks = self._ends.pop(tid)
            return [self._decide(tid, identity, end, ticks, "")]
        if self._station:
            return [self._decide(tid, identity, None, None, "")]
        return []                              # flow: wait for the track end to know where the card is

    def on_track_end(self, end: TrackEnd, encoder_ticks: int | None = None, stopped: bool = False) -> list[Routed]:
        """A track ended (``encoder_ticks``: the encoder count at its last stamp, encoder mode)."""
        tid = end.track_id
        if tid in self._decided or self._refuse(tid, stopped):
            return []
        self._first_seen.setdefault(tid, end.first_stamp_ns)
        identity = self._final.get(tid)
        if identity is not None:
            return [self._decide(tid, identity, end, encoder_ticks, "")]
        self._ends[tid] = (end, encoder_ticks)
        return []

    def _refuse(self, track_id: int, stopped: bool) -> bool:
        """While stopped nothing is accepted: the track is refused (True), for good (its card went by)."""
        if track_id in self._refused:
            return True
        if not stopped:
            return False
        self._refused.add(track_id)
        return True

    def poll(self, now_ns: int) -> list[Routed]:
        """Decisions forced by time: identities that never arrived, station cards that timed out."""
        out: list[Routed] = []
        for tid, (end, ticks) in sorted(self._ends.items()):
            # The grace runs from when the end was first seen here: a tracker reports an end only after
            # its missed-frame allowance, so the last sighting is already old by then.
            seen_ns = self._end_seen_ns.setdefault(tid, max(now_ns, end.last_stamp_ns))
            if now_ns - seen_ns >= self._grace_ns:
                self._end_seen_ns.pop(tid, None)
                del self._ends[tid]
                out.append(self._decide(tid, None, end, ticks, "identity never arrived"))
        if self._station:
            for tid, first in sorted(self._first_seen.items()):
                if tid in self._decided or tid in self._final:
                    continue
                if now_ns - first >= self._timeout_ns:
                    latest = self._latest.get(tid)
                    out.append(self._decide(tid, latest, None, None, "no decision within the station timeout",
                                            timed_out=True))
        return out

    def _decide(self, tid: int, identity: Identity | None, end: TrackEnd | None, ticks: int | None,
                why: str, timed_out: bool = False) -> Routed:
        self._decided.add(tid)
        first_ns = self._first_seen.pop(tid, end.first_stamp_ns if end else identity.stamp_ns if identity else 0)
        self._final.pop(tid, None)
        self._latest.pop(tid, None)
        self._ends.pop(tid, None)
        self._end_seen_ns.pop(tid, None)
        if identity is None:
            status, card, reason = SortStatus.UNCONFIRMED, None, why
        elif timed_out:
            status, card, reason = status_of(identity), identity.card, f"{why}; {identity.reason}"
        else:
            status, card, reason = status_of(identity), identity.card, identity.reason
        if status == SortStatus.CONFIRMED and card is not None and card.finish == UNKNOWN_FINISH \
                and self._rules.depend_on_finish:
            # several finishes in the catalogue, none shown by the closeups, and a rule asks: never assumed
            status, reason = SortStatus.AMBIGUOUS, f"finish unknown and the bins file sorts by finish; {reason}"
        last_ns = max(end.last_stamp_ns if end else 0, identity.stamp_ns if identity else 0)
        double_feed = end.double_feed if end is not None else False
        route = route_card(self._rules, card, status, double_feed, self.state, why=reason)
        self.state.record(route, card)
        decision = SortDecision(
            track_id=tid, status=status, card=card, bin_name=route.bin_name,
            reason=route.reason if route.bin_name == self._rules.reject_bin else f"{route.reason}; {reason}",
            distance_cos=identity.distance_cos if identity else math.inf,
            margin_to_runner_up=identity.margin_to_runner_up if identity else math.inf,
            first_stamp_ns=first_ns, last_stamp_ns=last_ns)
        return Routed(decision, end, ticks, route.bin_full)
