"""The operator's web view in a real browser on the running graph: cards appear, a review item teaches the matcher."""

from __future__ import annotations

import json
import os
import pathlib
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import webdriver
from rosutil import make_world

from cardsorter.inventory.sqlite_store import read_rows
from cardsorter.ros.graph import Graph
from cardsorter.ros.monitor_node import GraphMonitor
from cardsorter.ros.node_specs import NODE_NAMES
from cardsorter.ros.web_node import WebNode
from cardsorter.sim.catalog import load_catalog

pytestmark = pytest.mark.skipif(webdriver.available() is not None, reason=str(webdriver.available()))

NUISANCES = ("tilt", "motion_blur", "focus_blur", "glare", "haze", "hand_shadow", "finger", "exposure", "noise",
             "rotated_180", "double_feed", "close", "empty")
SCREENSHOTS = os.environ.get("CARDSORTER_WEB_SCREENSHOTS")   # a folder: save the three pages there (README)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """A 12-card database and one card that is not in it (the scene shows only that card)."""
    return make_world(tmp_path_factory.mktemp("web"), cards=12, seed=5, unknown=1)


def overrides(world: dict[str, pathlib.Path], out: pathlib.Path, cards: int) -> dict[str, dict[str, Any]]:
    camera: dict[str, Any] = {"source": "synthetic", "synthetic.catalog_dir": str(world["catalog"]),
                              "synthetic.mode": "station", "synthetic.cards": cards, "synthetic.unknown_frac": 1.0,
                              "synthetic.seed": 4, "synthetic.realtime": True, "fps": 10.0,
                              # a long dwell: enough views for the smoother even when a loaded CI drops frames
                              "synthetic.station_dwell_s": 5.0}
    camera.update({f"synthetic.nuisance.{n}": 0.0 for n in NUISANCES})
    return {"camera": camera, "matcher": {"database": str(world["db"])},
            "sorter": {"mode": "station", "inventory_path": str(out / "inventory.sqlite")},
            "web": {"port": 0, "inventory_path": str(out / "inventory.sqlite"),
                    "reference_images": str(world["catalog"] / "images"), "review_dir": str(out.parent / "review")}}


def wait_until(done: Callable[[], Any], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.25)
    return bool(done())


def api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_an_operator_names_a_rejected_card_in_the_browser_and_the_sorter_knows_it_next_time(
        world: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    (stranger, _), = load_catalog(world["catalog"] / "unknown")
    out = tmp_path / "run1"
    with Graph(None, (*NODE_NAMES, "web"), overrides(world, out, cards=2), extra_nodes=[GraphMonitor]) as graph, \
            webdriver.Browser(tmp_path / "chromium") as browser:
        web, monitor = graph.node_of(WebNode), graph.node_of(GraphMonitor)
        base = web.url.removesuffix("/live")
        graph.spin_in_background()
        browser.get(f"{base}/live")
        assert browser.wait_for("#tracks tbody tr", 60.0), "no card appeared on the live page"
        def shows(state: str) -> bool:
            return any(state in browser.text(browser.find_all(css)[0]).lower()
                       for css in ("#command-result", "#sorter-state"))

        for button, state in (("pause", "paused"), ("resume", "running")):
            browser.click(browser.find_all(f'button[data-command="{button}"]')[0])
            assert wait_until(lambda s=state: shows(s), 20.0), button  # type: ignore[misc]
        if SCREENSHOTS:
            browser.screenshot(pathlib.Path(SCREENSHOTS) / "web-live.png")
        browser.get(f"{base}/review")
        items = browser.wait_for(".item form.new-card", 90.0)
        assert items, "the rejected card never reached the review queue"
        if SCREENSHOTS:
            browser.screenshot(pathlib.Path(SCREENSHOTS) / "web-review.png")
        first = api(f"{base}/api/review")["items"][-1]
        assert first["status"] == "unknown" and first["has_crop"]
        form = browser.find_all(f'.item[data-item="{first["item_id"]}"] form.new-card')[0]
        for name, value in (("card_id", stranger.card_id), ("name", stranger.name), ("set_id", stranger.set_id),
                            ("number", stranger.number)):
            field = browser.run("return arguments[0].querySelector('input[name=' + arguments[1] + ']')",
                                {webdriver.ELEMENT: form}, name)
            browser.type(field[webdriver.ELEMENT], value)
        browser.click(browser.run("return arguments[0].querySelector('button')", {webdriver.ELEMENT: form})
                      [webdriver.ELEMENT])
        assert browser.wait_for(f'.item[data-item="{first["item_id"]}"].done, #review-items p', 30.0) is not None

        def resolved() -> dict[str, Any] | None:
            done = [i for i in api(f"{base}/api/review?all=1")["items"] if i["item_id"] == first["item_id"]]
            return done[0] if done and not done[0]["open"] else None

        assert wait_until(resolved, 30.0), "the review item was not resolved"
        item = resolved()
        assert item is not None and "enrolled" in item["message"], item
        assert graph.nodes["matcher"].database.has_card(stranger.card_id), "the matcher did not take the template"
        assert wait_until(monitor.all_sorted, 120.0), "the stack was not sorted"
        browser.get(f"{base}/inventory")
        assert browser.wait_for("#inventory-rows tbody tr", 20.0)
        if SCREENSHOTS:
            browser.screenshot(pathlib.Path(SCREENSHOTS) / "web-inventory.png")
    rows = {r.track_id: r for r in read_rows(out / "inventory.sqlite")}
    corrected = rows[first["track_id"]]
    assert (corrected.status, corrected.card_id, corrected.name) == ("corrected", stranger.card_id, stranger.name)

    # Restarted on the same database: the enrolled template came back from the delta, and the card is confirmed.
    again = tmp_path / "run2"
    with Graph(None, NODE_NAMES, overrides(world, again, cards=2), extra_nodes=[GraphMonitor]) as graph:
        monitor = graph.node_of(GraphMonitor)
        assert graph.spin_until(monitor.all_sorted, 180.0), "the second run did not sort its cards"
    rows2 = read_rows(again / "inventory.sqlite")
    assert len(rows2) == 2 and all(r.card_id in ("", stranger.card_id) for r in rows2), rows2   # never another card
    assert any((r.status, r.card_id) == ("confirmed", stranger.card_id) for r in rows2), rows2
