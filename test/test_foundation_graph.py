"""The whole graph over real DDS: a simulated belt in, one sort event and one inventory row per card out."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from rosutil import make_world

from cardsorter.inventory.sort_log import read_sort_log
from cardsorter.inventory.sqlite_store import read_rows, read_sessions
from cardsorter.ros.graph import Graph
from cardsorter.ros.monitor_node import GraphMonitor
from cardsorter.ros.node_specs import NODE_NAMES
from cardsorter.sim.catalog import load_catalog
from cardsorter.sim.scoring import score_run

CARDS_IN_STACK = 5


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("world")
    return make_world(root, cards=24, seed=11, unknown=4)


def run_graph(world: dict[str, pathlib.Path], out: pathlib.Path, **camera: Any) -> tuple[GraphMonitor, list[Any]]:
    overrides = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(world["catalog"]),
                   "synthetic.cards": CARDS_IN_STACK, "synthetic.seed": 3, "synthetic.realtime": True,
                   "fps": 10.0, **camera},
        "matcher": {"database": str(world["db"])},
        "sorter": {"inventory_path": str(out / "inventory.sqlite"), "sort_log": str(out / "sort_log.csv")},
    }
    with Graph(None, NODE_NAMES, overrides, extra_nodes=[GraphMonitor]) as graph:
        assert set(NODE_NAMES) <= set(graph.nodes)
        monitor = graph.node_of(GraphMonitor)
        # A generous ceiling for a few seconds of simulated belt on a loaded 2-core machine.
        assert graph.spin_until(monitor.all_sorted, 240.0), "the graph did not sort the whole stack"
    return monitor, read_rows(out / "inventory.sqlite")


def test_every_card_of_a_simulated_belt_is_sorted_once_with_an_inventory_row(
        small_world: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    monitor, rows = run_graph(small_world, tmp_path)
    assert monitor.track_ends, "no card was tracked"
    assert set(monitor.sort_events) == set(monitor.track_ends), "every ended track gets a sort event"
    assert monitor.duplicate_sort_events == []
    assert len(rows) == len(monitor.sort_events), "one inventory row per sort event"
    art_of = {rec.card_id: rec.art_id for rec, _ in load_catalog(small_world["catalog"])}
    score = score_run(monitor.truth_by_stamp, monitor.tracks_by_stamp, monitor.sorted_cards(), art_of)
    assert score.physical_cards == CARDS_IN_STACK
    # A card travelling almost against its neighbour can merge with it into one blob (one decision, to
    # reject, for both); any other card must be seen and decided.
    touching = sum(1 for o in score.outcomes if "close" in o.nuisances)
    assert score.count("missed") <= touching, [o for o in score.outcomes if o.outcome == "missed"]
    # Recognition really happened end to end: known cards were confirmed as the right card.
    assert score.count("correct") >= 1, score.summary()
    assert score.count("false_accept") == 0, score.summary()
    (session,) = read_sort_log(tmp_path / "sort_log.csv")
    assert len(session.rows) == len(rows) and not session.damaged
    assert read_sessions(tmp_path / "inventory.sqlite")[0]["database_id"], "the session records its database"
