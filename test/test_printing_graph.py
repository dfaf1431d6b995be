"""The printing reader in the graph over real DDS: reprints that share their art, told apart by the collector
number the real OCR engine reads on the camera's closeups."""

from __future__ import annotations

import pathlib

import pytest
from cardsorter.msg import CardCloseup, CloseupRequest, PrintingReading

from cardsorter.database_setup import build_database_from_settings
from cardsorter.inventory.sqlite_store import read_rows
from cardsorter.ros import qos
from cardsorter.ros.graph import Graph
from cardsorter.ros.monitor_node import GraphMonitor
from cardsorter.ros.node_specs import NODE_NAMES
from cardsorter.sim.catalog import load_catalog, reprint_designs, write_catalog
from cardsorter.sim.scoring import score_run

CARDS_IN_STACK = 3


@pytest.fixture(scope="module")
def reprint_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """Four artworks, each printed in two to four sets: every card's art has several printings."""
    root = tmp_path_factory.mktemp("reprints")
    write_catalog(reprint_designs(4, seed=6, min_printings=2, max_printings=4), root / "catalog")
    build_database_from_settings(root / "catalog" / "images", root / "db", metadata=root / "catalog" / "metadata.json")
    return {"catalog": root / "catalog", "db": root / "db"}


def test_a_station_sorts_reprints_as_the_printing_their_number_names(reprint_world: dict[str, pathlib.Path],
                                                                     tmp_path: pathlib.Path) -> None:
    from rosutil import Collector

    topics = {"printing_readings": (PrintingReading, qos.DECISIONS),
              "camera/closeup_requests": (CloseupRequest, qos.DECISIONS),
              "camera/closeups": (CardCloseup, qos.DECISIONS)}
    overrides = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(reprint_world["catalog"]),
                   "synthetic.cards": CARDS_IN_STACK, "synthetic.seed": 5, "synthetic.realtime": True,
                   "synthetic.mode": "station", "synthetic.unknown_frac": 0.0, "fps": 10.0,
                   **{f"synthetic.nuisance.{n}": 0.0 for n in ("double_feed", "finger", "motion_blur",
                                                             "focus_blur", "empty", "close")}},
        "matcher": {"database": str(reprint_world["db"])},
        "smoother": {"finalize_on_confirm": True},
        "sorter": {"inventory_path": str(tmp_path / "inventory.sqlite"), "sort_log": ""},
    }
    with Graph(None, NODE_NAMES, overrides,
               extra_nodes=[GraphMonitor, lambda ctx: Collector(ctx, topics)]) as graph:
        monitor = graph.node_of(GraphMonitor)
        collector = graph.node_of(Collector)
        assert graph.spin_until(monitor.all_sorted, 240.0), "the graph did not sort the whole stack"
    readings = collector.received["printing_readings"]
    assert collector.received["camera/closeup_requests"], "no closeup was asked for"
    assert all(not c.error for c in collector.received["camera/closeups"]), \
        [c.error for c in collector.received["camera/closeups"] if c.error]
    assert any(r.lines for r in readings), "nothing was read on the closeups"
    art_of = {rec.card_id: rec.art_id for rec, _ in load_catalog(reprint_world["catalog"])}
    score = score_run(monitor.truth_by_stamp, monitor.tracks_by_stamp, monitor.sorted_cards(), art_of)
    assert score.physical_cards == CARDS_IN_STACK
    assert score.count("wrong_printing") == 0 and score.count("false_accept") == 0, score.summary()
    # The embedder alone refuses most of these (their printings share the art); the number decides.
    assert score.count("correct") >= 2, score.summary()
    finals = monitor.final_identities.values()
    assert any(f.printing_views > 0 and f.printing_read for f in finals)
    rows = read_rows(tmp_path / "inventory.sqlite")
    assert len(rows) == len(monitor.sort_events)


def test_identify_reads_the_printing_of_a_reprinted_card_in_a_photo(reprint_world: dict[str, pathlib.Path],
                                                                    tmp_path: pathlib.Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import cv2
    import numpy as np

    from cardsorter.cli.__main__ import main

    record, path = load_catalog(reprint_world["catalog"])[3]
    card = cv2.imread(str(path))
    photo = np.full((1200, 1600, 3), (70, 90, 80), np.uint8)          # a scan-like photo: the card 700 px high
    y, x = 250, 500
    photo[y:y + card.shape[0], x:x + card.shape[1]] = card
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    assert main(["identify", str(tmp_path / "photo.png"), "--db", str(reprint_world["db"]), "--tiles", "0"]) == 0
    (line,) = [json.loads(t) for t in capsys.readouterr().out.splitlines() if t.strip()]
    printing = line["printing"]
    assert record.card_id in printing["printings"] and len(printing["printings"]) > 1
    assert printing["names"] == [record.card_id], printing
    assert printing["views"] == 1 and printing["verdict"] == "ambiguous"    # one photo is one view: never decides
    assert printing["finish"] == "unknown" and "2 views" in printing["finish_reason"]
