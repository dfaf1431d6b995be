"""SorterCore: final identities and track ends → one sort decision per track → scheduled actuations."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cardsorter.core.errors import ActuatorError, InventoryError
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.flow_schedule import BeltConfig, BeltModel
from cardsorter.core.sort_rules import RoutingState, SortRules
from cardsorter.core.types import (
    Identity,
    SortDecision,
    SortStatus,
    TrackEnd,
    TrackState,
)

MODES = ("station", "flow")


@dataclass(frozen=True)
class SorterConfig:
    """How decisions are made and when they are executed."""

    mode: str = doc("station: one card under the camera, actuate at once; flow: cards on a belt, actuate at the gate")
    rules_file: str = doc("bins and sort rules (YAML); relative paths are from the repository / share directory")
    identity_grace_ms: float = doc("after a track ends, how long to wait for its final identity before rejecting it",
                                   lo=0.0)
    station_timeout_ms: float = doc("station: a card with no final identity this long after it was first seen is decided "
                                    "as it stands", lo=0.0)
    missed_gate_ms: float = doc("flow: an actuation this late has missed its gate; the card is recorded in "
                                "passthrough_bin", lo=0.0)
    passthrough_bin: str = doc("the bin a card reaches when no gate is actuated for it (flow: the end of the belt)")
    stop_on_misroute: bool = doc("stop the sorter when a bin's drop sensor does not see the card arrive")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        check_ranges(self)


class SorterState(enum.Enum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ActuationResult:
    """An actuator's acknowledgement: it moved to ``bin_name``; ``arrived`` from a drop sensor if any."""

    bin_name: str
    duration_s: float
    arrived: bool | None = None      # None: no drop sensor on this bin
    detail: str = ""


class Journal(Protocol):
    """Where decisions are recorded before they are acted on (inventory.Inventory.journal satisfies it)."""

    def __call__(self, stage: str, decision: SortDecision, stamp_ns: int) -> None: ...


class BinRouter(Protocol):
    """What the core needs from an actuator (backends.actuators.Actuator satisfies it)."""

    def route(self, bin_name: str) -> ActuationResult: ...


@dataclass(frozen=True)
class ScheduledActuation:
    """A decision waiting for its card to reach the gate (flow) or for the actuator (station)."""

    decision: SortDecision
    due_ns: int | None
    due_ticks: int | None
    seq: int


@dataclass(frozen=True)
class SortEvent:
    """One physical card that reached a bin: the decision, where it actually went, its position."""

    decision: SortDecision
    position_in_bin: int
    actuated_ns: int
    arrived: bool | None
    note: str


def status_of(identity: Identity) -> SortStatus:
    """The sort status a final identity stands for (anything short of a decision is unconfirmed)."""
    return {TrackState.CONFIRMED: SortStatus.CONFIRMED, TrackState.UNKNOWN: SortStatus.UNKNOWN,
            TrackState.AMBIGUOUS: SortStatus.AMBIGUOUS}.get(identity.state, SortStatus.UNCONFIRMED)


class SorterCore:
    """The pure decision engine the sorter node drives; time and encoder counts are inputs.

    Every track id gets exactly one SortDecision: from its final identity (station: at once; flow:
    once its TrackEnd gives the card's position), or a reject when the identity never arrives
    within ``identity_grace_ms`` of the track's end. Decisions queue as ScheduledActuations; they
    are executed only while RUNNING. An actuator error stops the sorter: queued cards stay queued
    (``queued``) until ``resume``, and while STOPPED no card is accepted: identities and track ends
    are refused (``refused_tracks``: those cards pass the gates unsorted) and no decision is taken.
    """

    def __init__(self, config: SorterConfig, rules: SortRules, belt: BeltConfig | None = None,
                 initial_fill: Mapping[str, int] | None = None) -> None:
        if config.mode == "flow" and belt is None:
            raise ValueError("flow mode needs a BeltConfig")
        if config.passthrough_bin not in rules.bins:
            raise ValueError(f"passthrough_bin {config.passthrough_bin!r} is not a bin of {rules.path}")
        self._config = config
        self._rules = rules
        self._belt = BeltModel(belt) if belt is not None else None
        self._routing = RoutingState()
        self._positions: Counter[str] = Counter()
        for name, count in (initial_fill or {}).items():
            if name not in rules.bins:
                raise ValueError(f"initial fill names bin {name!r}, which is not in {rules.path}")
            self._routing.fill[name] = count
            self._positions[name] = count
        self._first_seen: dict[int, int] = {}
        self._latest: dict[int, Identity] = {}
        self._final: dict[int, Identity] = {}
        self._ends: dict[int, tuple[TrackEnd, int | None]] = {}
        self._end_seen_ns: dict[int, int] = {}
        self._decided: set[int] = set()
        self._queue: list[ScheduledActuation] = []
        self._journaled: set[int] = set()       # seqs of queued decisions already journaled as "decided"
        self._seq = 0
        self._state = SorterState.RUNNING
        self._message = ""
        self._refused: set[int] = set()
        self.errors = 0

    # --- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> SorterState:
        return self._state

    @property
    def message(self) -> str:
        """Why the sorter is paused or stopped ("" while running)."""
        return self._message

    @property
    def queued(self) -> tuple[ScheduledActuation, ...]:
        return tuple(self._queue)

    @property
    def refused_tracks(self) -> tuple[int, ...]:
        """Tracks whose identity or end arrived while STOPPED: never decided (the card was not sorted)."""
        return tuple(sorted(self._refused))

    @property
    def rules(self) -> SortRules:
        return self._rules

    @property
    def fill(self) -> Mapping[str, int]:
        """Cards sent (or queued) to each bin since it was last emptied."""
        return dict(self._routing.fill)

    @property
    def undecided_tracks(self) -> int:
        return len((set(self._first_seen) | set(self._final) | set(self._ends)) - self._decided)

    @property
    def idle(self) -> bool:
        """Nothing undecided and nothing waiting to be actuated (station mode: feed the next card)."""
        return not self._queue and self.undecided_tracks == 0

    def pause(self, why: str = "paused by the user") -> None:
        if self._state == SorterState.RUNNING:
            self._state, self._message = SorterState.PAUSED, why

    def stop(self, why: str = "stopped by the user") -> None:
        self._state, self._message = SorterState.STOPPED, why

    def resume(self) -> None:
        self._state, self._message = SorterState.RUNNING, ""

    def empty_bin(self, bin_name: str) -> None:
        """The user emptied ``bin_name``: its count and positions start again from zero."""
        if bin_name not in self._rules.bins:
            raise ValueError(f"no bin named {bin_name!r}")
        self._routing.empty_bin(bin_name)
        # cards decided for this bin but not yet actuated will still land in it
        self._routing.fill[bin_name] = sum(a.decision.bin_name == bin_name for a in self._queue)
        self._positions[bin_name] = 0

    # --- inputs --------------------------------------------------------------------------------

    def on_identity(self, identity: Identity) -> list[SortDecision]:
        """Any identity: non-final ones are remembered (station timeout); a final one decides."""
        tid = identity.track_id
        if tid in self._decided or self._refuse(tid):
            return []
        self._first_seen.setdefault(tid, identity.stamp_ns)
        self._latest[tid] = identity
        if not identity.final:
            return []
        self._final[tid] = identity
        if tid in self._ends:
            end, ticks = self._ends.pop(tid)
            return [self._decide(tid, identity, end, ticks, "")]
        if self._config.mode == "station":
            return [self._decide(tid, identity, None, None, "")]
        return []                              # flow: wait for the track end to know where the card is

    def on_track_end(self, end: TrackEnd, encoder_ticks: int | None = None) -> list[SortDecision]:
        """A track ended (``encoder_ticks``: the encoder count at its last stamp, encoder mode)."""
        tid = end.track_id
        if tid in self._decided or self._refuse(tid):
            return []
        self._first_seen.setdefault(tid, end.first_stamp_ns)
        identity = self._final.get(tid)
        if identity is not None:
            return [self._decide(tid, identity, end, encoder_ticks, "")]
        self._ends[tid] = (end, encoder_ticks)
        return []

    def _refuse(self, track_id: int) -> bool:
        """While STOPPED nothing is accepted: the track is refused (True), for good (its card went by)."""
        if track_id in self._refused:
            return True
        if self._state != SorterState.STOPPED:
            return False
        self._refused.add(track_id)
        return True

    def poll(self, now_ns: int) -> list[SortDecision]:
        """Decisions forced by time: identities that never arrived, station cards that timed out
        (none while STOPPED: a stopped sorter takes no decision)."""
        out: list[SortDecision] = []
        if self._state == SorterState.STOPPED:
            return out
        grace_ns = int(self._config.identity_grace_ms * 1e6)
        for tid, (end, ticks) in sorted(self._ends.items()):
            # The grace runs from when the end was first seen here: a tracker reports an end only after
            # its missed-frame allowance, so the last sighting is already old by then.
            seen_ns = self._end_seen_ns.setdefault(tid, max(now_ns, end.last_stamp_ns))
            if now_ns - seen_ns >= grace_ns:
                self._end_seen_ns.pop(tid, None)
                del self._ends[tid]
                out.append(self._decide(tid, None, end, ticks, "identity never arrived"))
        if self._config.mode == "station":
            timeout_ns = int(self._config.station_timeout_ms * 1e6)
            for tid, first in sorted(self._first_seen.items()):
                if tid in self._decided or tid in self._final:
                    continue
                if now_ns - first >= timeout_ns:
                    latest = self._latest.get(tid)
                    out.append(self._decide(tid, latest, None, None, "no decision within the station timeout",
                                            timed_out=True))
        return out

    # --- decisions -----------------------------------------------------------------------------

    def _decide(self, tid: int, identity: Identity | None, end: TrackEnd | None, ticks: int | None,
                why: str, timed_out: bool = False) -> SortDecision:
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
        last_ns = max(end.last_stamp_ns if end else 0, identity.stamp_ns if identity else 0)
        double_feed = end.double_feed if end is not None else False
        route = self._rules.route(card, status, double_feed, self._routing, why=reason)
        self._routing.record(route, card)
        decision = SortDecision(
            track_id=tid, status=status, card=card, bin_name=route.bin_name,
            reason=route.reason if route.bin_name == self._rules.reject_bin else f"{route.reason}; {reason}",
            distance_cos=identity.distance_cos if identity else math.inf,
            margin_to_runner_up=identity.margin_to_runner_up if identity else math.inf,
            first_stamp_ns=first_ns, last_stamp_ns=last_ns)
        due_ns: int | None = last_ns
        due_ticks: int | None = None
        if self._config.mode == "flow" and end is not None and self._belt is not None:
            arrival = self._belt.arrival(end, self._rules.bins[route.bin_name].gate_mm, ticks)
            due_ns, due_ticks = arrival.due_ns, arrival.due_ticks
        self._seq += 1
        self._queue.append(ScheduledActuation(decision, due_ns, due_ticks, self._seq))
        self._queue.sort(key=lambda a: (a.due_ticks if a.due_ticks is not None else a.due_ns or 0, a.seq))
        if route.bin_full:
            self.pause(f"reject bin {self._rules.reject_bin} is full: empty it and resume")
        return decision

    # --- execution -----------------------------------------------------------------------------

    def due_actuations(self, now_ns: int, encoder_ticks: int | None = None) -> list[ScheduledActuation]:
        """Queued actuations whose card is at its gate now (all of them in station mode), in order.

        Empty unless RUNNING. They stay queued until ``complete`` or ``fail`` is called for them.
        """
        if self._state != SorterState.RUNNING:
            return []
        return [a for a in self._queue if self._is_due(a, now_ns, encoder_ticks)]

    def _is_due(self, act: ScheduledActuation, now_ns: int, ticks: int | None) -> bool:
        if self._config.mode == "station":
            return True
        if act.due_ticks is not None:
            return ticks is not None and ticks >= act.due_ticks
        return act.due_ns is not None and now_ns >= act.due_ns

    def is_missed(self, act: ScheduledActuation, now_ns: int, encoder_ticks: int | None = None) -> bool:
        """Flow: the card passed its gate before the actuator could be set (it goes to passthrough_bin)."""
        if self._config.mode != "flow" or self._belt is None:
            return False
        late_ms = self._config.missed_gate_ms
        belt = self._belt.config
        if act.due_ticks is not None:
            if encoder_ticks is None:
                return False
            late_ticks = late_ms / 1000.0 * belt.belt_speed_mm_per_s * belt.ticks_per_mm
            return encoder_ticks - act.due_ticks > late_ticks
        return act.due_ns is not None and now_ns - act.due_ns > late_ms * 1e6

    def complete(self, act: ScheduledActuation, result: ActuationResult | None, now_ns: int) -> SortEvent:
        """The actuation of ``act`` finished (``result`` None: it was missed and not attempted)."""
        self._queue.remove(act)
        self._journaled.discard(act.seq)
        decision, note = act.decision, ""
        if result is None and decision.bin_name == self._config.passthrough_bin:
            pass                                   # late for the passthrough bin: the card gets there anyway
        elif result is None:
            passthrough = self._config.passthrough_bin
            self._routing.fill[decision.bin_name] -= 1
            self._routing.fill[passthrough] += 1
            note = f"missed the gate of {decision.bin_name}"
            decision = dataclasses.replace(decision, bin_name=passthrough, reason=f"{note}; {decision.reason}")
        elif result.bin_name != decision.bin_name:
            self.stop(f"actuator acknowledged bin {result.bin_name!r} for a card meant for {decision.bin_name!r}")
            note = self._message
        self._positions[decision.bin_name] += 1
        arrived = result.arrived if result is not None else None
        if arrived is False:
            note = f"drop sensor of {decision.bin_name} did not see the card: possible mis-route"
            if self._config.stop_on_misroute:
                self.stop(note)
        return SortEvent(decision, self._positions[decision.bin_name], now_ns, arrived, note)

    def fail(self, act: ScheduledActuation, error: str) -> None:
        """The actuator failed for ``act``: stop; the card stays queued and nothing moves until resume."""
        self.errors += 1
        self.stop(f"actuator error on track {act.decision.track_id} → {act.decision.bin_name}: {error}")

    def _journal(self, journal: Journal, stage: str, act: ScheduledActuation, stamp_ns: int) -> bool:
        """Journal ``act``; a journal that cannot be written stops the sorter (nothing moves unrecorded)."""
        try:
            journal(stage, act.decision, stamp_ns)
        except InventoryError as err:
            self.errors += 1
            self.stop(f"decision journal write failed for track {act.decision.track_id}: {err}")
            return False
        return True

    def execute_due(self, now_ns: int, actuator: BinRouter, commit: Callable[[SortEvent], None],
                    encoder_ticks: int | None = None, drain: bool = False,
                    journal: Journal | None = None) -> list[SortEvent]:
        """Actuate every due card in order; ``commit`` (the inventory) runs before the next card moves.

        ``journal`` (the inventory's decision journal) hears every new decision (``decided``, even
        while paused or stopped) and every card just before the actuator moves for it (``actuating``),
        so a crash between deciding and ``commit`` leaves a trace; a journal that raises InventoryError
        stops the sorter before anything moves. ``drain``: the stream ended and the
        belt carries the last cards on to their gates, so every queued card is actuated in gate order,
        each at its own due time (none counts as missed). An ActuatorError stops the sorter and ends
        the loop; events before it are returned.
        """
        events: list[SortEvent] = []
        if journal is not None:
            for act in self._queue:
                if act.seq not in self._journaled:
                    if not self._journal(journal, "decided", act, now_ns):
                        return events
                    self._journaled.add(act.seq)
        if self._state != SorterState.RUNNING:
            return events
        due = list(self._queue) if drain else self.due_actuations(now_ns, encoder_ticks)
        for act in due:
            if self._state != SorterState.RUNNING:
                break
            at_ns = max(now_ns, act.due_ns or 0) if drain else now_ns
            if not drain and self.is_missed(act, now_ns, encoder_ticks):
                event = self.complete(act, None, now_ns)
            else:
                if journal is not None and not self._journal(journal, "actuating", act, at_ns):
                    break
                try:
                    result = actuator.route(act.decision.bin_name)
                except ActuatorError as err:
                    self.fail(act, str(err))
                    break
                event = self.complete(act, result, at_ns)
            commit(event)
            events.append(event)
        return events
