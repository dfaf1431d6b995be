"""SorterCore: the sorter's three jobs wired together for the node: routing (sort_routing: which bin),
the gate schedule (gate_schedule: when) and execution (sort_execution: queue, actuation, run state)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cardsorter.core.bin_rules import SortRules
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.gate_schedule import BeltConfig, GateSchedule, ScheduledActuation
from cardsorter.core.sort_execution import BinRouter, Journal, SorterState, SortEvent, SortExecution
from cardsorter.core.sort_routing import Routed, TrackRouter
from cardsorter.core.types import Identity, SortDecision, TrackEnd

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


class SorterCore:
    """The pure sorter the node drives; time and encoder counts are inputs. It holds no state of its own:
    routing (TrackRouter) decides every track's bin, the gate schedule times each decision and execution
    (SortExecution) queues and actuates it. Decisions are executed only while RUNNING; while STOPPED no
    card is accepted: identities and track ends are refused (``refused_tracks``: those cards pass the
    gates unsorted) and no decision is taken. A card routed to a full reject bin pauses the sorter.
    """

    def __init__(self, config: SorterConfig, rules: SortRules, belt: BeltConfig | None = None,
                 initial_fill: Mapping[str, int] | None = None) -> None:
        if config.mode == "flow" and belt is None:
            raise ValueError("flow mode needs a BeltConfig")
        if config.passthrough_bin not in rules.bins:
            raise ValueError(f"passthrough_bin {config.passthrough_bin!r} is not a bin of {rules.path}")
        station = config.mode == "station"
        self._rules = rules
        self._router = TrackRouter(rules, station, config.identity_grace_ms, config.station_timeout_ms, initial_fill)
        self._execution = SortExecution(GateSchedule(station, config.missed_gate_ms, rules.bins, belt),
                                        config.passthrough_bin, config.stop_on_misroute,
                                        on_missed_gate=self._router.state.moved, initial_fill=initial_fill)

    # --- state ---------------------------------------------------------------------------------

    @property
    def state(self) -> SorterState:
        return self._execution.state

    @property
    def message(self) -> str:
        """Why the sorter is paused or stopped ("" while running)."""
        return self._execution.message

    @property
    def errors(self) -> int:
        """Actuator and journal failures so far."""
        return self._execution.errors

    @property
    def queued(self) -> tuple[ScheduledActuation, ...]:
        return self._execution.queued

    @property
    def refused_tracks(self) -> tuple[int, ...]:
        """Tracks whose identity or end arrived while STOPPED: never decided (the card was not sorted)."""
        return self._router.refused_tracks

    @property
    def rules(self) -> SortRules:
        return self._rules

    @property
    def fill(self) -> Mapping[str, int]:
        """Cards sent (or queued) to each bin since it was last emptied."""
        return dict(self._router.state.fill)

    @property
    def undecided_tracks(self) -> int:
        return self._router.undecided_tracks

    @property
    def idle(self) -> bool:
        """Nothing undecided and nothing waiting to be actuated (station mode: feed the next card)."""
        return not self._execution.queued and self._router.undecided_tracks == 0

    def pause(self, why: str = "paused by the user") -> None:
        self._execution.pause(why)

    def stop(self, why: str = "stopped by the user") -> None:
        self._execution.stop(why)

    def resume(self) -> None:
        self._execution.resume()

    def empty_bin(self, bin_name: str) -> None:
        """The user emptied ``bin_name``: its count and positions start again from zero."""
        if bin_name not in self._rules.bins:
            raise ValueError(f"no bin named {bin_name!r}")
        # cards decided for this bin but not yet actuated will still land in it
        self._router.state.empty_bin(bin_name, still_coming=self._execution.queued_for(bin_name))
        self._execution.empty_bin(bin_name)

    # --- inputs --------------------------------------------------------------------------------

    def on_identity(self, identity: Identity) -> list[SortDecision]:
        """Any identity: non-final ones are remembered (station timeout); a final one decides."""
        return self._queue(self._router.on_identity(identity, stopped=self._stopped))

    def on_track_end(self, end: TrackEnd, encoder_ticks: int | None = None) -> list[SortDecision]:
        """A track ended (``encoder_ticks``: the encoder count at its last stamp, encoder mode)."""
        return self._queue(self._router.on_track_end(end, encoder_ticks, stopped=self._stopped))

    def poll(self, now_ns: int) -> list[SortDecision]:
        """Decisions forced by time: identities that never arrived, station cards that timed out
        (none while STOPPED: a stopped sorter takes no decision)."""
        return [] if self._stopped else self._queue(self._router.poll(now_ns))

    @property
    def _stopped(self) -> bool:
        return self._execution.state == SorterState.STOPPED

    def _queue(self, routed: list[Routed]) -> list[SortDecision]:
        for r in routed:
            self._execution.enqueue(r.decision, r.end, r.encoder_ticks)
            if r.reject_bin_full:
                self._execution.pause(f"reject bin {self._rules.reject_bin} is full: empty it and resume")
        return [r.decision for r in routed]

    # --- execution -----------------------------------------------------------------------------

    def due_actuations(self, now_ns: int, encoder_ticks: int | None = None) -> list[ScheduledActuation]:
        """Queued actuations whose card is at its gate now (all of them in station mode), in order."""
        return self._execution.due_actuations(now_ns, encoder_ticks)

    def execute_due(self, now_ns: int, actuator: BinRouter, commit: Callable[[SortEvent], None],
                    encoder_ticks: int | None = None, drain: bool = False,
                    journal: Journal | None = None) -> list[SortEvent]:
        """Actuate every due card in order (SortExecution.execute_due)."""
        return self._execution.execute_due(now_ns, actuator, commit, encoder_ticks, drain, journal)
