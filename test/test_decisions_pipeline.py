"""Smoother → SorterCore → simulated actuator → inventory on a constructed match stream (no ROS)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
from decisions_support import (
    MS,
    belt_config,
    card,
    match,
    smoother_config,
    sorter_config,
    track_end,
)

from cardsorter.backends.actuators import (
    actuator_from_config,
)
from cardsorter.config import REPO_ROOT
from cardsorter.core.bin_rules import load_rules
from cardsorter.core.smoothing import TemporalSmoother
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.sorting import SorterCore
from cardsorter.core.types import BoxPx, MatchBand, TrackEnd
from cardsorter.inventory.sort_log import SortLogWriter, read_sort_log
from cardsorter.inventory.sqlite_store import Inventory, read_rows
from cardsorter.settings import load_settings

FRAME_NS = 33 * MS

# What each physical card shows the camera, frame after frame, and where it must end up.
# config/bins.yaml: Rare Holo → bin1, 5th+ copy → bin2, then by_set over bin3..bin6, else overflow.
HOLO = card("s1-9", rarity="Rare Holo", finish="holo")
COMMON_S1 = card("s1-2")
COMMON_S2 = card("s2-2")
REPRINT_A, REPRINT_B = card("s3-4", art_id="art-z"), card("s4-4", art_id="art-z")
OTHER = card("s1-3")


def script() -> list[tuple[list[tuple[MatchBand, object]], bool, str, str]]:
    """(views, double_feed, expected bin, expected status) per track id 1..n, in belt order."""
    c = MatchBand.CONFIRMED
    return [
        ([(c, HOLO)] * 4, False, "bin1", "confirmed"),
        ([(c, COMMON_S1)] * 3, False, "bin3", "confirmed"),              # the first set takes bin3
        ([(c, COMMON_S2)] * 3, False, "bin4", "confirmed"),              # the second set takes bin4
        ([(MatchBand.UNKNOWN, None)] * 4, False, "reject", "unknown"),
        ([(c, REPRINT_A), (c, REPRINT_B), (c, REPRINT_A)], False, "reject", "ambiguous"),
        ([(c, COMMON_S1)] * 2, False, "reject", "unconfirmed"),          # left the view before a 3rd view
        ([(c, COMMON_S1)] * 3, True, "reject", "confirmed"),             # two cards stuck together
        ([], False, "reject", "unconfirmed"),                            # never embedded at all
        ([(c, COMMON_S1)] * 3 + [(c, OTHER)] * 2, False, "bin3", "confirmed"),   # late disagreement ignored
    ] + [([(c, COMMON_S2)] * 3, False, "bin4" if i < 3 else "bin2", "confirmed") for i in range(4)]


@pytest.fixture
def parts(tmp_path: pathlib.Path):
    rules = load_rules(REPO_ROOT / "config" / "bins.yaml")
    sim = dataclasses.replace(load_settings().sorter.actuator.simulated, realtime=False)
    actuator = actuator_from_config(sim, rules.bins)
    belt = belt_config(speed_source="track", px_per_mm=2.0, image_origin_mm=0.0)
    core = SorterCore(sorter_config(mode="flow"), rules, belt)
    inventory = Inventory(tmp_path / "inv.sqlite", session_id="pipe", model_id="m", database_id="d",
                          reject_bin=rules.reject_bin, opened_ns=0)
    return core, actuator, inventory, TemporalSmoother(smoother_config(confirm_views=3, flip_views=0)), tmp_path


def test_every_track_gets_one_event_in_the_right_bin_and_one_inventory_row(parts) -> None:
    core, actuator, inventory, smoother, tmp_path = parts
    plan = script()
    events: list[SortEvent] = []
    log = SortLogWriter(tmp_path / "sort_log.csv")

    def commit(event: SortEvent) -> None:
        inventory.append(event)
        log.write(event.decision)
        events.append(event)

    # Tracks enter one after another, 4 frames apart, each seen for len(views)+1 frames, and leave
    # at the right edge of a 640 px view moving at 300 px/s.
    frame = 0
    starts = {tid: 1 + 4 * (tid - 1) for tid in range(1, len(plan) + 1)}
    last = {tid: starts[tid] + len(views) + 1 for tid, (views, *_) in enumerate(plan, start=1)}
    ended: set[int] = set()
    while len(ended) < len(plan) or core.queued or core.undecided_tracks:
        frame += 1
        stamp = frame * FRAME_NS
        matches = []
        for tid, (views, double_feed, _, _) in enumerate(plan, start=1):
            if starts[tid] == frame:
                smoother.track_seen(tid, stamp)
            k = frame - starts[tid] - 1
            if 0 <= k < len(views):
                band, c = views[k]
                matches.append(match(tid, band, c))
            if frame == last[tid]:
                end = TrackEnd(tid, starts[tid] * FRAME_NS, stamp, len(views) + 1, BoxPx(514.0, 150.0, 126.0, 176.0),
                               (300.0, 0.0), double_feed, "left_view")
                final = smoother.end_track(end)
                if final is not None:
                    core.on_identity(final)
                core.on_track_end(end)
                ended.add(tid)
        for ident in smoother.observe(matches, stamp):
            core.on_identity(ident)
        core.poll(stamp)
        core.execute_due(stamp, actuator, commit)
        assert frame < 10_000, "the stream never settled"
    log.close()

    got = {e.decision.track_id: e for e in events}
    assert sorted(got) == list(range(1, len(plan) + 1)) and len(events) == len(plan)
    for tid, (_, _, bin_name, status) in enumerate(plan, start=1):
        assert (got[tid].decision.bin_name, got[tid].decision.status.value) == (bin_name, status), tid
    rows = read_rows(inventory.path)
    assert [(r.track_id, r.bin, r.position_in_bin) for r in rows] == \
        [(e.decision.track_id, e.decision.bin_name, e.position_in_bin) for e in events]
    per_bin: dict[str, list[int]] = {}
    for r in rows:
        per_bin.setdefault(r.bin, []).append(r.position_in_bin)
    assert all(p == list(range(1, len(p) + 1)) for p in per_bin.values())
    (session,) = read_sort_log(tmp_path / "sort_log.csv")
    assert len(session.rows) == len(plan) and not session.damaged
    assert not any(e.note for e in events)             # every card reached its gate in time


def test_track_end_with_identity_never_arriving_is_rejected(parts) -> None:
    core, actuator, _, _, _ = parts
    core.on_track_end(track_end(99, 0))
    events: list[SortEvent] = []
    core.poll(0)                      # the end is seen; the grace runs from here
    core.poll(10 * 1_000_000_000)
    core.execute_due(10 * 1_000_000_000, actuator, events.append, drain=True)
    assert [(e.decision.track_id, e.decision.bin_name) for e in events] == [(99, "reject")]
