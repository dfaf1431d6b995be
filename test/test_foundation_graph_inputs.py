"""The running graph under malformed input: every bad message is counted and dropped where it arrives,
no node dies, and the cards that follow are still sorted right."""

from __future__ import annotations

import array
import math
import pathlib
import time
from typing import Any

import numpy as np
import pytest
from cardsorter.msg import CardCrop as CardCropMsg
from cardsorter.msg import (
    CardCropArray,
    CardDetection,
    CardDetectionArray,
    CardEmbeddingArray,
    CardIdentityArray,
    CardMatchArray,
    MatchCandidate,
)
from cardsorter.msg import CardMatch as CardMatchMsg
from cardsorter.msg import TrackEnd as TrackEndMsg
from rosutil import Collector, make_world
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from cardsorter.core.types import BoxPx, CardEmbedding, CardRecord, Identity, TrackEnd, TrackState
from cardsorter.inventory.sqlite_store import read_rows
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.graph import Graph
from cardsorter.ros.monitor_node import GraphMonitor
from cardsorter.ros.node_specs import NODE_NAMES
from cardsorter.sim.catalog import load_catalog
from cardsorter.sim.scoring import score_run

CARDS_IN_STACK = 5
HOUR_NS = 3600 * 1_000_000_000
FAKE = 90_000            # track ids of injected messages (the tracker counts from 1)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    return make_world(tmp_path_factory.mktemp("world"), cards=24, seed=11, unknown=4)


def detection(bbox: list[float], quad: list[float], track_id: int = -1) -> CardDetection:
    return CardDetection(track_id=track_id, bbox_px=bbox, has_quad=True, quad_px=quad, score=0.9, class_name="card")


def frame(stamp_ns: int) -> Image:
    return cv.image_to_msg(np.zeros((480, 640, 3), np.uint8), cv.header(stamp_ns, "camera_optical_frame"))


def identity(track: int, state: TrackState, card: CardRecord | None, stamp_ns: int) -> Any:
    return cv.identity_to_msg(Identity(track, state, card, 0.0, 2.0, 2.0, 0, 0, False, "injected", stamp_ns), "c")


def track_end(track: int, first_ns: int, last_ns: int) -> TrackEndMsg:
    msg = cv.track_end_to_msg(TrackEnd(track, min(first_ns, last_ns), last_ns, 3, BoxPx(10, 10, 60, 80), (0.0, 0.0),
                                       False, "injected"), "c")
    msg.first_stamp_ns = first_ns
    return msg


TOPICS = (("embeddings", CardEmbeddingArray, qos.PIPELINE, 1), ("camera/image_raw", Image, qos.CAMERA_FRAMES, 2),
          ("camera/detections", CardDetectionArray, qos.PIPELINE, 2), ("tracks", CardDetectionArray, qos.PIPELINE, 4),
          ("identities", CardIdentityArray, qos.DECISIONS, 4), ("track_ends", TrackEndMsg, qos.DECISIONS, 4),
          ("matches", CardMatchArray, qos.PIPELINE, 2), ("crops", CardCropArray, qos.PIPELINE, 1),
          ("camera/end_of_stream", Header, qos.DECISIONS, 3), ("database/status", String, qos.DATABASE_STATUS, 1))
"""Topic, type, QoS and how many subscribers it has in the graph (nodes and the monitor)."""


def inject(graph: Graph, pubs: dict[str, Any], now_ns: int) -> None:
    """Publish each malformed message once; ``now_ns``: a stamp of the running stream."""
    matcher, selector = graph.nodes["matcher"], graph.nodes["frame_selector"]
    model, dim = matcher.database.model_id, matcher.database.dimension
    rng = np.random.default_rng(1)
    unit = rng.standard_normal(dim).astype(np.float32)
    unit /= np.linalg.norm(unit)
    small = rng.standard_normal(100).astype(np.float32)
    hdr = cv.header(now_ns, "camera_optical_frame")
    future = cv.header(now_ns + HOUR_NS, "camera_optical_frame")

    # embeddings: vectors matching their own dimension field (100) but not the database (768);
    # NaN, zero and non-normalised vectors; another model
    pubs["embeddings"].publish(cv.embeddings_to_msg([CardEmbedding(FAKE, small / np.linalg.norm(small))], hdr, model, 100))
    pubs["embeddings"].publish(cv.embeddings_to_msg([CardEmbedding(FAKE + 1, np.full(dim, np.nan, np.float32)),
                                                     CardEmbedding(FAKE + 2, np.zeros(dim, np.float32)),
                                                     CardEmbedding(FAKE + 3, unit * 2.0)], hdr, model, dim))
    pubs["embeddings"].publish(cv.embeddings_to_msg([CardEmbedding(FAKE + 4, unit)], hdr, "another-model", dim))

    # detections with corners at +-1e30, corners far outside the 640x480 frame, a NaN box; the frame
    # is also one stamp older than the frame selector's last (it needs increasing stamps)
    # (frames are sensor data: best effort, depth 2, so each frame is published last and taken at once)
    stale = (selector._inputs.last_good_stamp_ns or now_ns) - 1
    pubs["camera/detections"].publish(CardDetectionArray(header=cv.header(stale, "c"), detections=[
        detection([100.0, 100.0, 63.0, 88.0], [-1e30, -1e30, 1e30, -1e30, 1e30, 1e30, -1e30, 1e30]),
        detection([100.0, 100.0, 63.0, 88.0], [600.0, 400.0, 700.0, 400.0, 700.0, 540.0, 600.0, 540.0]),
        detection([math.nan, 100.0, 63.0, 88.0], [100.0, 100.0, 163.0, 100.0, 163.0, 188.0, 100.0, 188.0])]))
    pubs["camera/image_raw"].publish(frame(stale))
    assert graph.spin_until(lambda: selector._inputs.dropped.get("camera/detections", 0) >= 4, 30.0)
    # a well-formed frame stamped an hour ahead (the tracker would adopt it and die on the next frame)
    pubs["camera/detections"].publish(CardDetectionArray(header=future, detections=[
        detection([100.0, 100.0, 63.0, 88.0], [100.0, 100.0, 163.0, 100.0, 163.0, 188.0, 100.0, 188.0])]))
    pubs["camera/image_raw"].publish(frame(now_ns + HOUR_NS))
    assert graph.spin_until(lambda: selector._inputs.dropped.get("camera/detections", 0) >= 5, 30.0)

    # one tracks message an hour ahead (it used to move the sorter's clock for good)
    pubs["tracks"].publish(CardDetectionArray(header=future, detections=[
        detection([100.0, 100.0, 63.0, 88.0], [100.0, 100.0, 163.0, 100.0, 163.0, 188.0, 100.0, 188.0], FAKE + 20)]))

    # identities: an unknown state, a confirmation without a card; a good one stamped an hour ahead
    pubs["identities"].publish(CardIdentityArray(header=hdr, identities=[
        identity(FAKE + 31, TrackState.CONFIRMED, None, now_ns)]))
    msg = CardIdentityArray(header=hdr, identities=[identity(FAKE + 32, TrackState.DETECTING, None, now_ns)])
    msg.identities[0].state = 42
    pubs["identities"].publish(msg)
    pubs["identities"].publish(CardIdentityArray(header=future, identities=[
        identity(FAKE + 33, TrackState.DETECTING, None, now_ns + HOUR_NS)]))

    # track ends: stamps out of order; a good one stamped an hour ahead
    pubs["track_ends"].publish(track_end(FAKE + 40, now_ns, now_ns - 1_000_000_000))
    pubs["track_ends"].publish(track_end(FAKE + 41, now_ns + HOUR_NS, now_ns + HOUR_NS))

    # matches: an unknown band, a NaN distance; a good one stamped an hour ahead
    cand = MatchCandidate(card_id="x-1", name="Injected", set_id="x", distance_cos=0.1)
    nan_cand = MatchCandidate(card_id="x-1", name="Injected", set_id="x", distance_cos=math.nan)
    pubs["matches"].publish(CardMatchArray(header=hdr, matches=[
        CardMatchMsg(track_id=FAKE + 50, band=9, distance_cos=0.1, margin_to_runner_up=0.3, candidates=[cand]),
        CardMatchMsg(track_id=FAKE + 51, band=0, distance_cos=0.1, margin_to_runner_up=0.3, candidates=[nan_cand])]))
    pubs["matches"].publish(CardMatchArray(header=future, matches=[
        CardMatchMsg(track_id=FAKE + 52, band=0, distance_cos=0.1, margin_to_runner_up=0.3, candidates=[cand])]))

    # an end of stream an hour ahead (it used to end every track and move the sorter's clock);
    # a database status that is not the matcher's JSON object
    pubs["camera/end_of_stream"].publish(future)
    pubs["database/status"].publish(String(data='{"data": 5}'))   # (latched, depth 1: one at a time)

    # crops: an image whose buffer does not hold its declared size
    broken = Image(header=hdr, height=160, width=112, encoding="bgr8", step=336, data=array.array("B", bytes(10)))
    pubs["crops"].publish(CardCropArray(header=hdr, crops=[CardCropMsg(track_id=FAKE + 60, bbox_px=[0.0] * 4,
                                                                        quad_px=[0.0] * 8, image=broken)]))


# node -> topic -> (messages or parts dropped, a word of each reason)
EXPECTED = {
    "matcher": {"embeddings": (5, ["dimension 100", "non-finite", "zero vector", "L2 norm", "another-model"])},
    "frame_selector": {"camera/detections": (5, ["corner outside", "non-finite", "before the last good", "ahead"]),
                       "camera/end_of_stream": (1, ["ahead"]),
                       "identities": (2, ["without a card", "unknown state 42"])},
    "smoother": {"tracks": (1, ["ahead"]), "track_ends": (2, ["out of order", "ahead"]),
                 "matches": (3, ["unknown band 9", "non-finite candidate distance", "ahead"])},
    "sorter": {"tracks": (1, ["ahead"]), "identities": (3, ["without a card", "unknown state 42", "ahead"]),
               "track_ends": (2, ["out of order", "ahead"]), "camera/end_of_stream": (1, ["ahead"]),
               "database/status": (1, ["malformed"])},
    "overlay": {"identities": (2, ["without a card", "unknown state 42"])},
    "embedder": {"crops": (1, ["does not fit"])},
}


def dropped_everywhere(graph: Graph) -> dict[str, dict[str, int]]:
    return {name: dict(graph.nodes[name]._inputs.dropped) for name in EXPECTED}


def test_each_malformed_message_is_counted_and_dropped_and_the_following_cards_are_sorted_right(
        small_world: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    overrides = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(small_world["catalog"]),
                   "synthetic.cards": CARDS_IN_STACK, "synthetic.seed": 3, "synthetic.realtime": True, "fps": 10.0},
        "matcher": {"database": str(small_world["db"])},
        # the data clock only (as in a replay): a gate is missed only if that clock jumps
        "sorter": {"inventory_path": str(tmp_path / "inventory.sqlite"), "clock_tick_ms": 0.0},
    }
    with Graph(None, NODE_NAMES, overrides, extra_nodes=[GraphMonitor, lambda ctx: Collector(ctx, {})]) as graph:
        monitor, col = graph.node_of(GraphMonitor), graph.node_of(Collector)
        pubs = {topic: col.publisher(msg_type, topic, profile) for topic, msg_type, profile, _ in TOPICS}
        assert graph.spin_until(lambda: all(pubs[t].get_subscription_count() >= n for t, _, _, n in TOPICS), 60.0)
        # inject while the first cards are on the belt, once the frame selector has a clock
        assert graph.spin_until(lambda: monitor.frames >= 8 and graph.nodes["sorter"]._inputs.last_good_stamp_ns
                                is not None, 120.0)
        now_ns = max(monitor.tracks_by_stamp)
        assert monitor.end_of_stream_wall is None, "the stream ended before anything was injected"
        inject(graph, pubs, now_ns)
        expected_counts = {n: {t: c for t, (c, _) in topics.items()} for n, topics in EXPECTED.items()}
        graph.spin_until(lambda: dropped_everywhere(graph) == expected_counts
                         and {FAKE + 40, FAKE + 41} <= set(monitor.track_ends)
                         and monitor.end_of_stream_wall is not None, 30.0)
        # the monitor heard the injected track ends and tracks too: they are not cards of the belt
        with monitor._lock:
            for tid in (FAKE + 40, FAKE + 41):
                monitor.track_ends.pop(tid, None)
            monitor.tracks_by_stamp.pop(now_ns + HOUR_NS, None)
            # (and the injected end of stream, unless the camera's real one came meanwhile)
            monitor.end_of_stream_wall = time.monotonic() if graph.nodes["camera"]._ended else None
        # A generous ceiling for a few seconds of simulated belt on a loaded 2-core machine.
        assert graph.spin_until(monitor.all_sorted, 240.0), "the graph did not sort the whole stack"
        assert all(graph.nodes[n].context.ok() for n in NODE_NAMES)

        for name, topics in EXPECTED.items():
            guard = graph.nodes[name]._inputs
            for topic, (count, words) in topics.items():
                assert guard.dropped.get(topic) == count, (name, topic, list(guard.recent.get(topic, [])))
                reasons = " | ".join(guard.recent[topic])
                for word in words:
                    assert word in reasons, (name, topic, word, reasons)
                counters = graph.nodes[name]._monitor.counters
                assert counters[f"dropped_{topic.replace('/', '_')}"] == count
        assert dropped_everywhere(graph) == {n: {t: c for t, (c, _) in topics.items()} for n, topics in EXPECTED.items()}

    rows = read_rows(tmp_path / "inventory.sqlite")
    real_events = {t: e for t, e in monitor.sort_events.items() if t < FAKE}
    assert set(monitor.sort_events) == set(real_events), "no injected track was sorted"
    assert set(real_events) == set(monitor.track_ends), "every real track got its sort event"
    assert monitor.duplicate_sort_events == []
    assert len(rows) == len(real_events)
    assert not [e.reason for e in real_events.values() if "missed the gate" in e.reason], "the clock never jumped"
    art_of = {rec.card_id: rec.art_id for rec, _ in load_catalog(small_world["catalog"])}
    score = score_run(monitor.truth_by_stamp, monitor.tracks_by_stamp, monitor.sorted_cards(), art_of)
    assert score.physical_cards == CARDS_IN_STACK
    touching = sum(1 for o in score.outcomes if "close" in o.nuisances)
    assert score.count("missed") <= touching, [o for o in score.outcomes if o.outcome == "missed"]
    assert score.count("correct") >= 1, score.summary()
    assert score.count("false_accept") == 0, score.summary()
