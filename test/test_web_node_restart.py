"""The web node's review queue survives a restart of the node; a restored item is never enrolled by its stale track id."""

from __future__ import annotations

import json
import pathlib
import urllib.request
from typing import Any

import numpy as np
from cardsorter.msg import CardCrop, CardCropArray, SortEvent
from cardsorter.srv import EnrolCard
from rosutil import Collector, overrides, ros_context, spin_until
from std_msgs.msg import Header

from cardsorter.core.types import CardRecord
from cardsorter.ros import conversions, qos
from cardsorter.ros.web_node import WebNode


def api(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def web_node(context: Any, tmp_path: pathlib.Path) -> WebNode:
    return WebNode(context=context, parameter_overrides=overrides(
        "web", port=0, review_dir=str(tmp_path / "review"), inventory_path=str(tmp_path / "inventory.sqlite"),
        reference_images=""))


def test_an_open_review_item_survives_a_restart_and_is_not_enrolled_by_its_old_track_id(tmp_path: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        web = web_node(context, tmp_path)
        feed = Collector(context, {})
        executor.add_node(web)
        executor.add_node(feed)
        crops = feed.publisher(CardCropArray, "crops", qos.PIPELINE)
        events = feed.publisher(SortEvent, "sort_events", qos.DECISIONS)
        assert spin_until(executor, lambda: crops.get_subscription_count() > 0 and events.get_subscription_count() > 0)
        hdr = Header()
        crop = np.full((88, 64, 3), 120, np.uint8)
        crops.publish(CardCropArray(header=hdr, crops=[CardCrop(track_id=3, image=conversions.image_to_msg(crop, hdr))]))
        spin_until(executor, lambda: False, 0.5)
        events.publish(SortEvent(header=hdr, track_id=3, status="unknown", reason="no close match", bin="reject",
                                 session_id="a1b2c3"))
        base = web.url.removesuffix("/live")
        assert spin_until(executor, lambda: len(api(f"{base}/api/review")["items"]) == 1)

    enrolled: list[int] = []
    with ros_context() as (context, executor):
        web = web_node(context, tmp_path)
        matcher = Collector(context, {})
        matcher.create_service(EnrolCard, "matcher/enrol_card",
                               lambda req, res: (enrolled.append(req.track_id), setattr(res, "success", True), res)[-1])
        executor.add_node(web)
        executor.add_node(matcher)
        base = web.url.removesuffix("/live")
        items = api(f"{base}/api/review")["items"]
        assert [(i["track_id"], i["session_id"], i["status"], i["has_crop"], i["restored"]) for i in items] == \
            [(3, "a1b2c3", "unknown", True, True)]
        with urllib.request.urlopen(f"{base}/api/review/{items[0]['item_id']}/crop.jpg", timeout=10) as r:
            assert r.read(2) == b"\xff\xd8"
        item = web.state.review_item(items[0]["item_id"])
        assert item is not None
        message = web.resolve(item, CardRecord("sv1-2", "Bulbasaur", "sv1", number="2", art_id="sv1-2"))
        assert "not enrolled" in message and enrolled == []
    with ros_context() as (context, executor):
        web = web_node(context, tmp_path)   # resolved: not queued again
        assert api(f"{web.url.removesuffix('/live')}/api/review")["items"] == []

