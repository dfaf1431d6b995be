"""Executing decisions: the queue of cards waiting for their gate, the actuation loop and the run state."""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from cardsorter.core.errors import ActuatorError, InventoryError
from cardsorter.core.gate_schedule import GateSchedule, ScheduledActuation
from cardsorter.core.types import SortDecision, TrackEnd


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
    """What execution needs from an actuator (backends.actuators.Actuator satisfies it)."""

    def route(self, bin_name: str) -> ActuationResult: ...


@dataclass(frozen=True)
class SortEvent:
    """One physical card that reached a bin: the decision, where it actually went, its position."""

    decision: SortDecision
    position_in_bin: int
    actuated_ns: int
    arrived: bool | None
    note: str


class SortExecution:
    """The queue of decided cards, actuated in gate order while RUNNING; time and encoder counts are inputs.

    An actuator error stops the sorter: queued cards stay queued (``queued``) until ``resume``. A card
    that missed its gate is recorded in ``passthrough_bin`` and ``on_missed_gate(bin, passthrough_bin)``
    tells routing where it went instead.
    """

    def __init__(self, schedule: GateSchedule, passthrough_bin: str, stop_on_misroute: bool,
                 on_missed_gate: Callable[[str, str], None], initial_fill: Mapping[str, int] | None = None) -> None:
        self._schedule = schedule
        self._passthrough = passthrough_bin
        self._stop_on_misroute = stop_on_misroute
        self._on_missed_gate = on_missed_gate
        self._positions: Counter[str] = Counter(initial_fill or {})
        self._queue: list[ScheduledActuation] = []
        self._journaled: set[int] = set()       # seqs of queued decisions already journaled as "decided"
        self._seq = 0
        self._state = SorterState.RUNNING
        self._message = ""
        self.errors = 0

    # --- run state -----------------------------------------------------------------------------

    @property
    def state(self) -> SorterState:
        return self._state

    @property
    def message(self) -> str:
        """Why the sorter is paused or stopped ("" while running)."""
        return self._message

    def pause(self, why: str = "paused by the user") -> None:
        if self._state == SorterState.RUNNING:
            self._state, self._message = SorterState.PAUSED, why

    def stop(self, why: str = "stopped by the user") -> None:
        self._state, self._message = SorterState.STOPPED, why

    def resume(self) -> None:
        self._state, self._message = SorterState.RUNNING, ""

    # --- the queue -----------------------------------------------------------------------------

    @property
    def queued(self) -> tuple[ScheduledActuation, ...]:
        return tuple(self._queue)

    def queued_for(self, bin_name: str) -> int:
        """Cards decided for ``bin_name`` and not yet actuated."""
        return sum(a.decision.bin_name == bin_name for a in self._queue)

    def enqueue(self, decision: SortDecision, end: TrackEnd | None, encoder_ticks: int | None) -> ScheduledActuation:
        """Queue ``decision`` at the due time the gate schedule gives it."""
        self._seq += 1
        act = self._schedule.schedule(decision, end, encoder_ticks, self._seq)
        self._queue.append(act)
        self._queue.sort(key=lambda a: a.order)
        return act

    def empty_bin(self, bin_name: str) -> None:
        """The user emptied ``bin_name``: positions in it start again from zero."""
        self._positions[bin_name] = 0

    # --- actuation -----------------------------------------------------------------------------

    def due_actuations(self, now_ns: int, encoder_ticks: int | None = None) -> list[ScheduledActuation]:
        """Queued actuations whose card is at its gate now (all of them in station mode), in order.

        Empty unless RUNNING. They stay queued until ``complete`` or ``fail`` is called for them.
        """
        if self._state != SorterState.RUNNING:
            return []
        return [a for a in self._queue if self._schedule.is_due(a, now_ns, encoder_ticks)]

    def complete(self, act: ScheduledActuation, result: ActuationResult | None, now_ns: int) -> SortEvent:
        """The actuation of ``act`` finished (``result`` None: it was missed and not attempted)."""
        self._queue.remove(act)
        self._journaled.discard(act.seq)
        decision, note = act.decision, ""
        if result is None and decision.bin_name == self._passthrough:
            pass                                   # late for the passthrough bin: the card gets there anyway
        elif result is None:
            self._on_missed_gate(decision.bin_name, self._passthrough)
            note = f"missed the gate of {decision.bin_name}"
            decision = dataclasses.replace(decision, bin_name=self._passthrough, reason=f"{note}; {decision.reason}")
        elif result.bin_name != decision.bin_name:
            self.stop(f"actuator acknowledged bin {result.bin_name!r} for a card meant for {decision.bin_name!r}")
            note = self._message
        self._positions[decision.bin_name] += 1
        arrived = result.arrived if result is not None else None
        if arrived is False:
            note = f"drop sensor of {decision.bin_name} did not see the card: possible mis-route"
            if self._stop_on_misroute:
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
            if not drain and self._schedule.is_missed(act, now_ns, encoder_ticks):
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
