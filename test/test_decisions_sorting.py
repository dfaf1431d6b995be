"""SorterCore: one decision per track, station and flow scheduling, stop on actuator error, pause/resume."""

from __future__ import annotations

import pathlib

import pytest
from decisions_support import (
    BASIC_BINS,
    MS,
    belt_config,
    card,
    identity,
    rules_from,
    sorter_config,
    track_end,
)

from cardsorter.core.bin_rules import SortRules
from cardsorter.core.errors import ActuatorError
from cardsorter.core.gate_schedule import GateSchedule
from cardsorter.core.sort_execution import ActuationResult, SorterState, SortEvent
from cardsorter.core.sort_routing import TrackRouter
from cardsorter.core.sorting import SorterCore
from cardsorter.core.types import BoxPx, SortStatus, TrackState

S = 1_000_000_000


class Router:
    """A test actuator: acknowledges, or raises for the bins in ``fail``."""

    def __init__(self, fail: set[str] | None = None, arrived: bool | None = None) -> None:
        self.fail = fail or set()
        self.arrived = arrived
        self.calls: list[str] = []

    def route(self, bin_name: str) -> ActuationResult:
        self.calls.append(bin_name)
        if bin_name in self.fail:
            raise ActuatorError(f"no ACK for {bin_name}")
        return ActuationResult(bin_name, 0.1, self.arrived)


@pytest.fixture
def rules(tmp_path: pathlib.Path) -> SortRules:
    return rules_from(tmp_path, """
        rules:
          - {bin: a, set: s1}
          - {bin: b, any: true}
        """)


def station(rules: SortRules, **kw: object) -> SorterCore:
    return SorterCore(sorter_config(mode="station", **kw), rules)


def flow(rules: SortRules, **belt: object) -> SorterCore:
    params: dict[str, object] = {"speed_source": "config", "belt_speed_mm_per_s": 100.0, "px_per_mm": 1.0,
                                 "image_origin_mm": 0.0, "actuation_lead_ms": 0.0}
    return SorterCore(sorter_config(mode="flow"), rules, belt_config(**{**params, **belt}))


def run(core: SorterCore, now_ns: int, router: Router | None = None) -> list[SortEvent]:
    events: list[SortEvent] = []
    core.execute_due(now_ns, router or Router(), events.append)
    return events


# --- station ------------------------------------------------------------------------------------

def test_station_final_identity_is_decided_and_actuated_at_once(rules: SortRules) -> None:
    core = station(rules)
    decisions = core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 10 * MS))
    assert [(d.track_id, d.bin_name, d.status) for d in decisions] == [(1, "a", SortStatus.CONFIRMED)]
    router = Router()
    events = run(core, 10 * MS, router)
    assert router.calls == ["a"] and [e.position_in_bin for e in events] == [1]
    assert core.queued == ()


@pytest.mark.parametrize("state,status", [(TrackState.UNKNOWN, SortStatus.UNKNOWN),
                                          (TrackState.AMBIGUOUS, SortStatus.AMBIGUOUS),
                                          (TrackState.STABILIZING, SortStatus.UNCONFIRMED)])
def test_undecided_identities_go_to_reject(rules: SortRules, state: TrackState, status: SortStatus) -> None:
    core = station(rules)
    (d,) = core.on_identity(identity(1, state, card("s1-4"), 0))
    assert d.bin_name == "reject" and d.status == status


def test_station_timeout_decides_a_card_that_never_got_a_final_identity(rules: SortRules) -> None:
    core = station(rules, station_timeout_ms=1000.0)
    core.on_identity(identity(1, TrackState.STABILIZING, card("s1-4"), 0, final=False))
    assert core.poll(999 * MS) == []
    (d,) = core.poll(1000 * MS)
    assert d.bin_name == "reject" and d.status == SortStatus.UNCONFIRMED and "station timeout" in d.reason
    assert core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 2 * S)) == []   # once only


def test_station_is_idle_once_the_card_is_in_its_bin(rules: SortRules) -> None:
    core = station(rules)
    assert core.idle
    core.on_identity(identity(1, TrackState.STABILIZING, card("s1-4"), 0, final=False))
    assert not core.idle
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 10 * MS))
    assert not core.idle
    run(core, 10 * MS)
    assert core.idle


def test_positions_count_per_bin(rules: SortRules) -> None:
    core = station(rules)
    for tid, cid in enumerate(["s1-1", "s2-1", "s1-2", "s1-3"], start=1):
        core.on_identity(identity(tid, TrackState.CONFIRMED, card(cid), tid * MS))
    events = run(core, S)
    assert [(e.decision.bin_name, e.position_in_bin) for e in events] == [("a", 1), ("b", 1), ("a", 2), ("a", 3)]


# --- flow ---------------------------------------------------------------------------------------

def test_flow_waits_for_the_track_end_then_schedules_at_the_gate(rules: SortRules) -> None:
    core = flow(rules)
    assert core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 100 * MS)) == []
    # edge at 300 px = 300 mm; bin a's gate at 400 mm; 100 mm/s → 1 s after the last stamp
    (d,) = core.on_track_end(track_end(1, 100 * MS, box=BoxPx(200.0, 0.0, 100.0, 100.0)))
    assert d.bin_name == "a"
    (act,) = core.queued
    assert act.due_ns == 1100 * MS
    assert run(core, 1099 * MS) == []
    (event,) = run(core, 1100 * MS)
    assert event.decision.track_id == 1


def test_flow_identity_after_the_end_within_grace(rules: SortRules) -> None:
    core = flow(rules)
    assert core.on_track_end(track_end(1, 0)) == []
    assert core.poll(100 * MS) == []
    (d,) = core.on_identity(identity(1, TrackState.CONFIRMED, card("s2-1"), 50 * MS))
    assert d.bin_name == "b"


def test_identity_that_never_arrives_is_rejected_after_grace(rules: SortRules) -> None:
    core = flow(rules)
    core.on_track_end(track_end(7, 0))
    grace = int(sorter_config().identity_grace_ms * MS)
    assert core.poll(0) == []         # the end is seen; the grace runs from here
    assert core.poll(grace - 1) == []
    (d,) = core.poll(grace)
    assert d.track_id == 7 and d.bin_name == "reject" and d.reason == "unconfirmed: identity never arrived"
    assert core.on_identity(identity(7, TrackState.CONFIRMED, card("s1-1"), grace + 1)) == []


def test_double_feed_is_rejected_even_when_confirmed(rules: SortRules) -> None:
    core = flow(rules)
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))
    (d,) = core.on_track_end(track_end(1, 0, double_feed=True))
    assert d.bin_name == "reject" and d.reason.startswith("double feed")
    assert d.status == SortStatus.CONFIRMED          # what was seen is kept; where it went is reject


def test_exactly_one_decision_per_track(rules: SortRules) -> None:
    core = flow(rules)
    out = []
    for tid in range(1, 41):
        if tid % 3:
            out += core.on_identity(identity(tid, TrackState.CONFIRMED, card(f"s{tid % 2 + 1}-{tid}"), tid * MS))
        out += core.on_track_end(track_end(tid, tid * MS))
        out += core.on_track_end(track_end(tid, tid * MS))                       # duplicates are ignored
        out += core.on_identity(identity(tid, TrackState.UNKNOWN, None, tid * MS))
    out += core.poll(10 * S)
    assert sorted(d.track_id for d in out) == list(range(1, 41))
    events = run(core, 100 * S)
    assert sorted(e.decision.track_id for e in events) == list(range(1, 41))


def test_cards_are_actuated_in_gate_order(rules: SortRules) -> None:
    core = flow(rules)
    # track 1 is far from its gate, track 2 close to its gate: 2 goes first
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s2-1"), 0))
    core.on_track_end(track_end(1, 0, box=BoxPx(0.0, 0.0, 100.0, 100.0)))        # b at 500 mm: 4 s
    core.on_identity(identity(2, TrackState.CONFIRMED, card("s1-1"), 0))
    core.on_track_end(track_end(2, 0, box=BoxPx(250.0, 0.0, 100.0, 100.0)))      # a at 400 mm: 0.5 s
    assert [a.decision.track_id for a in core.queued] == [2, 1]


def test_missed_gate_is_recorded_in_the_passthrough_bin(rules: SortRules) -> None:
    core = flow(rules)
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))
    core.on_track_end(track_end(1, 0, box=BoxPx(200.0, 0.0, 100.0, 100.0)))     # due at 1 s
    router = Router()
    (event,) = run(core, 3 * S, router)
    assert router.calls == [] and event.decision.bin_name == "reject"
    assert event.note.startswith("missed the gate of a") and core.fill["a"] == 0


def test_drain_actuates_the_last_cards_at_their_gates(rules: SortRules) -> None:
    core = flow(rules)
    for tid, x in ((1, 200.0), (2, 100.0)):
        core.on_identity(identity(tid, TrackState.CONFIRMED, card("s1-1"), 0))
        core.on_track_end(track_end(tid, 0, box=BoxPx(x, 0.0, 100.0, 100.0)))       # due at 1 s and 2 s
    events: list[SortEvent] = []
    core.execute_due(100 * S, Router(), events.append, drain=True)    # long after both gates
    assert [(e.decision.track_id, e.decision.bin_name, e.actuated_ns) for e in events] == \
        [(1, "a", 100 * S), (2, "a", 100 * S)]
    core.on_identity(identity(3, TrackState.CONFIRMED, card("s1-1"), 0))
    core.on_track_end(track_end(3, 0, box=BoxPx(200.0, 0.0, 100.0, 100.0)))
    core.execute_due(0, Router(), events.append, drain=True)
    assert events[-1].decision.bin_name == "a" and events[-1].actuated_ns == S        # at its own due time


def test_a_late_card_for_the_passthrough_bin_is_not_a_miss(rules: SortRules) -> None:
    core = flow(rules)
    core.on_identity(identity(1, TrackState.UNKNOWN, None, 0))
    core.on_track_end(track_end(1, 0, box=BoxPx(200.0, 0.0, 100.0, 100.0)))
    (event,) = run(core, 60 * S)
    assert event.decision.bin_name == "reject" and event.note == "" and core.fill["reject"] == 1


def test_encoder_mode_schedules_on_ticks(rules: SortRules) -> None:
    core = flow(rules, speed_source="encoder", ticks_per_mm=1.0)
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))
    core.on_track_end(track_end(1, 0, box=BoxPx(200.0, 0.0, 100.0, 100.0)), encoder_ticks=1000)
    assert core.queued[0].due_ticks == 1100
    events: list[SortEvent] = []
    core.execute_due(0, Router(), events.append, encoder_ticks=1099)
    assert events == []
    core.execute_due(0, Router(), events.append, encoder_ticks=1100)
    assert len(events) == 1


# --- stop, pause, resume ------------------------------------------------------------------------

def test_actuator_error_stops_the_sorter_and_cards_go_nowhere(rules: SortRules) -> None:
    core = station(rules)
    for tid, cid in enumerate(["s1-1", "s2-1", "s1-2"], start=1):
        core.on_identity(identity(tid, TrackState.CONFIRMED, card(cid), tid))
    router = Router(fail={"a"})
    events = run(core, S, router)
    assert events == [] and router.calls == ["a"]
    assert core.state == SorterState.STOPPED and "no ACK for a" in core.message
    assert [a.decision.track_id for a in core.queued] == [1, 2, 3]      # still queued, reported
    assert core.due_actuations(2 * S) == []
    assert run(core, 2 * S, Router()) == []                             # nothing moves while stopped
    core.resume()
    events = run(core, 3 * S, Router())
    assert [e.decision.track_id for e in events] == [1, 2, 3]


def test_a_stopped_sorter_accepts_no_card_and_takes_no_decision(rules: SortRules) -> None:
    core = flow(rules)
    core.on_track_end(track_end(1, 0))              # seen before the stop: stays pending
    core.stop("actuator error on track 0")
    assert core.on_identity(identity(2, TrackState.CONFIRMED, card("s1-1"), S)) == []
    assert core.on_track_end(track_end(3, S)) == []
    assert core.poll(10 * S) == [], "no decision while stopped, not even a reject after the grace"
    assert core.refused_tracks == (2, 3)
    core.resume()
    core.on_identity(identity(2, TrackState.CONFIRMED, card("s1-1"), 11 * S))
    core.poll(11 * S)
    (d,) = core.poll(11 * S + int(sorter_config().identity_grace_ms * MS))
    assert d.track_id == 1, "after resume the pending card is decided; a refused one stays refused"
    assert core.refused_tracks == (2, 3)


def test_decisions_continue_while_paused(rules: SortRules) -> None:
    core = station(rules)
    core.pause()
    assert core.state == SorterState.PAUSED
    assert len(core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))) == 1
    assert run(core, S) == []
    core.resume()
    assert len(run(core, S)) == 1


def test_drop_sensor_miss_flags_a_misroute_and_stops(rules: SortRules) -> None:
    core = station(rules, stop_on_misroute=True)
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))
    core.on_identity(identity(2, TrackState.CONFIRMED, card("s1-2"), 0))
    (event,) = run(core, S, Router(arrived=False))
    assert event.arrived is False and "mis-route" in event.note
    assert core.state == SorterState.STOPPED and len(core.queued) == 1


def test_full_reject_bin_pauses_the_sorter(tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: reject, capacity: 100", "{name: reject, capacity: 1")
    core = station(rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins))
    core.on_identity(identity(1, TrackState.UNKNOWN, None, 0))
    assert [e.position_in_bin for e in run(core, S)] == [1]
    core.on_identity(identity(2, TrackState.UNKNOWN, None, 0))
    core.on_identity(identity(3, TrackState.UNKNOWN, None, 0))
    assert core.state == SorterState.PAUSED and "reject bin reject is full" in core.message
    assert run(core, S) == []
    core.empty_bin("reject")
    assert core.fill["reject"] == 2                   # the two queued cards are not in the bin yet
    core.resume()
    assert [e.position_in_bin for e in run(core, S)] == [1, 2]


def test_initial_fill_continues_positions(rules: SortRules) -> None:
    core = SorterCore(sorter_config(mode="station"), rules, initial_fill={"a": 10})
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-1"), 0))
    (event,) = run(core, S)
    assert event.position_in_bin == 11


def test_flow_needs_a_belt(rules: SortRules) -> None:
    with pytest.raises(ValueError, match="BeltConfig"):
        SorterCore(sorter_config(mode="flow"), rules)


def test_passthrough_bin_must_exist(rules: SortRules) -> None:
    with pytest.raises(ValueError, match="passthrough_bin"):
        SorterCore(sorter_config(mode="station", passthrough_bin="floor"), rules)


# --- the decision journal -------------------------------------------------------------------------

def test_every_decision_is_journaled_once_when_taken_and_again_just_before_its_actuation(rules: SortRules) -> None:
    core = flow(rules)
    trail: list[tuple[str, int, str]] = []

    class Recording(Router):
        def route(self, bin_name: str) -> ActuationResult:
            trail.append(("route", 0, bin_name))
            return super().route(bin_name)

    def journal(stage: str, decision: object, stamp_ns: int) -> None:
        trail.append((stage, decision.track_id, decision.bin_name))  # type: ignore[attr-defined]

    def commit(event: SortEvent) -> None:
        trail.append(("commit", event.decision.track_id, event.decision.bin_name))

    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 100 * MS))
    core.on_track_end(track_end(1, 100 * MS, box=BoxPx(200.0, 0.0, 100.0, 100.0)))   # due at 1100 ms
    core.execute_due(500 * MS, Recording(), commit, journal=journal)      # decided, not at its gate yet
    core.execute_due(600 * MS, Recording(), commit, journal=journal)      # nothing new to journal
    assert trail == [("decided", 1, "a")]
    core.execute_due(1100 * MS, Recording(), commit, journal=journal)
    assert trail == [("decided", 1, "a"), ("actuating", 1, "a"), ("route", 0, "a"), ("commit", 1, "a")]


def test_decisions_taken_while_paused_are_journaled_before_anything_moves(rules: SortRules) -> None:
    core = station(rules)
    core.pause("test")
    stages: list[str] = []
    router = Router()
    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 0))
    assert core.execute_due(0, router, lambda e: None, journal=lambda s, d, t: stages.append(s)) == []
    assert stages == ["decided"] and router.calls == []
    core.resume()
    core.execute_due(0, router, lambda e: None, journal=lambda s, d, t: stages.append(s))
    assert stages == ["decided", "actuating"] and router.calls == ["a"]


def test_a_journal_that_cannot_be_written_stops_the_sorter_before_anything_moves(rules: SortRules) -> None:
    from cardsorter.core.errors import InventoryError

    core = station(rules)
    router = Router()

    def broken(stage: str, decision: object, stamp_ns: int) -> None:
        raise InventoryError("disk full")

    core.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 0))
    assert core.execute_due(0, router, lambda e: None, journal=broken) == []
    assert core.state == SorterState.STOPPED and "journal write failed for track 1: disk full" in core.message
    assert router.calls == [] and len(core.queued) == 1


# --- each job on its own ------------------------------------------------------------------------

def test_routing_alone_decides_each_track_once_with_no_queue_or_clock(rules: SortRules) -> None:
    router = TrackRouter(rules, station=False, identity_grace_ms=500.0, station_timeout_ms=5000.0)
    assert router.on_identity(identity(1, TrackState.CONFIRMED, card("s1-4"), 10 * MS)) == []   # flow: needs the end
    (routed,) = router.on_track_end(track_end(1, 12 * MS))
    assert (routed.decision.bin_name, routed.end is not None) == ("a", True)
    assert router.on_track_end(track_end(1, 13 * MS)) == [] and router.undecided_tracks == 0
    assert router.on_identity(identity(2, TrackState.CONFIRMED, card("s1-5"), 14 * MS), stopped=True) == []
    assert router.refused_tracks == (2,)


def test_the_gate_schedule_alone_times_a_decision_at_its_bin_s_gate(rules: SortRules) -> None:
    belt = belt_config(speed_source="config", belt_speed_mm_per_s=100.0, px_per_mm=1.0, image_origin_mm=0.0,
                       actuation_lead_ms=0.0)
    schedule = GateSchedule(station=False, missed_gate_ms=150.0, bins=rules.bins, belt=belt)
    router = TrackRouter(rules, False, 500.0, 5000.0)
    router.on_identity(identity(1, TrackState.CONFIRMED, card("s2-1"), 1 * S))
    (routed,) = router.on_track_end(track_end(1, 1 * S, box=BoxPx(300.0, 100.0, 100.0, 100.0)))
    act = schedule.schedule(routed.decision, routed.end, None, seq=1)
    # bin b's gate is at 500 mm, the card's leading edge at 400 mm: 100 mm at 100 mm/s is 1 s later
    assert routed.decision.bin_name == "b" and act.due_ns == 2 * S
    assert not schedule.is_due(act, 2 * S - 1) and schedule.is_due(act, 2 * S)
    assert not schedule.is_missed(act, 2 * S + 150 * MS) and schedule.is_missed(act, 2 * S + 151 * MS)
