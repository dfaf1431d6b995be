"""Replaying a bag: its frames through the real graph (frame selector → sorter) into a sort log.

`cardsorter replay` and the regression goldens (cardsorter/regression.py) both call ``replay_bag``.
"""

from __future__ import annotations

import functools
import logging
import pathlib
import shutil
import tempfile
from typing import Any

from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image

from cardsorter.backends.detectors import open_detector
from cardsorter.config import resolve_path
from cardsorter.core.errors import BagError
from cardsorter.ros import conversions
from cardsorter.ros.frame_selector_node import FrameSelectorNode
from cardsorter.ros.graph import Graph
from cardsorter.ros.monitor_node import GraphMonitor
from cardsorter.ros.rosbag_io import FramePublisher, bag_has_detections, read_frames
from cardsorter.ros.smoother_node import SmootherNode
from cardsorter.ros.sorter_node import SorterNode
from cardsorter.settings import load_settings

log = logging.getLogger("cardsorter.replay")

FRAME_TIMEOUT_S = 30.0       # one frame through the whole loop; generous (a cold ONNX session on a busy CPU)
DRAIN_TIMEOUT_S = 60.0
MATCH_TIMEOUT_S = 10.0
END_OF_STREAM_AFTER_NS = 1_000_000_000   # the end of stream is stamped 1 s after the last frame


def replay_bag(bag: pathlib.Path, db: pathlib.Path, out_csv: pathlib.Path, *, image_topic: str | None = None,
               params_file: pathlib.Path | None = None, detect: str = "auto") -> dict[str, Any]:
    """Feed a bag's frames through the real graph (frame selector → sorter) and write its sort log."""
    use_detections = detect == "bag" or (detect == "auto" and bag_has_detections(bag))
    if detect == "bag" and not bag_has_detections(bag):
        raise BagError(f"{bag} has no camera/detections: use --detect cpu")
    detector = None
    if not use_detections:
        detector = open_detector(load_settings(params_file).camera.detector)
    work = pathlib.Path(tempfile.mkdtemp(prefix="cardsorter-replay-"))
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    if out_csv.exists():
        out_csv.unlink()
    overrides: dict[str, dict[str, Any]] = {
        "matcher": {"database": str(resolve_path(db))},
        "sorter": {"sort_log": str(out_csv.resolve()), "inventory_path": str(work / "inventory.sqlite"),
                   "actuator_kind": "simulated", "actuator.simulated.realtime": False, "clock_tick_ms": 0.0,
                   "actuator.simulated.jam_probability": 0.0, "actuator.simulated.misroute_probability": 0.0},
    }
    nodes = ["frame_selector", "embedder", "matcher", "smoother", "sorter"]
    frames = 0
    last_stamp = 0
    frame_id = "camera_optical_frame"
    try:
        with Graph(params_file, nodes, overrides, extra_nodes=[FramePublisher, GraphMonitor]) as graph:
            player, monitor = graph.node_of(FramePublisher), graph.node_of(GraphMonitor)
            if not graph.spin_until(graph.all_matched, MATCH_TIMEOUT_S):
                raise BagError(f"the graph's nodes did not find each other within {MATCH_TIMEOUT_S} s")
            in_step = functools.partial(_in_step, monitor, graph.node_of(FrameSelectorNode),
                                        graph.node_of(SmootherNode), graph.node_of(SorterNode))
            for frame in read_frames(bag, image_topic, use_detections):
                if frame.stamp_ns <= last_stamp:
                    log.warning("frame stamped %d is not after %d: skipped", frame.stamp_ns, last_stamp)
                    continue
                if frame.detections is not None:
                    dets = frame.detections
                else:
                    image = deserialize_message(frame.image_raw, Image)
                    frame_id = image.header.frame_id or frame_id
                    found = detector.detect(conversions.image_from_msg(image))  # type: ignore[union-attr]
                    dets = conversions.detections_to_msg(found, image.header, frames)
                player.publish_frame(frame.image_raw, dets)
                if not graph.spin_until(functools.partial(in_step, frame.stamp_ns), FRAME_TIMEOUT_S):
                    raise BagError(f"frame {frame.stamp_ns} did not go through the graph within {FRAME_TIMEOUT_S} s")
                frames += 1
                last_stamp = frame.stamp_ns
            if frames == 0:
                raise BagError(f"{bag} has no frames on the image topic")
            player.end_of_stream(last_stamp + END_OF_STREAM_AFTER_NS, frame_id)
            if not graph.spin_until(monitor.all_sorted, DRAIN_TIMEOUT_S):
                raise BagError("the graph did not sort every track after the end of the bag")
            result = {"frames": frames, "tracks": len(monitor.track_ends), "sort_events": len(monitor.sort_events),
                      "detections": "bag" if use_detections else "cpu"}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _in_step(monitor: GraphMonitor, selector: FrameSelectorNode, smoother: SmootherNode, sorter: SorterNode,
             stamp_ns: int) -> bool:
    """The frame went through the whole loop and every node has taken in everything sent so far.

    Nodes meet over several topics (the sorter hears identities, track ends and tracks; the frame
    selector's gate hears identities back): on a loaded machine one topic can lag another by a second,
    and a replay that went on at the first answer sorted differently from run to run. A replay waits
    for each frame until no message is in flight between the nodes whose decisions it replays. The
    counts read first are the ones whose callbacks publish what is counted next."""
    if not monitor.frame_done(stamp_ns):
        return False
    tracks, ends = selector.tracks_published, selector.track_ends_published
    if not (smoother.inputs.handled["tracks"] == sorter.inputs.handled["tracks"] == tracks
            and smoother.inputs.handled["track_ends"] == sorter.inputs.handled["track_ends"] == ends):
        return False
    identities = smoother.identities_published
    return sorter.inputs.handled["identities"] == selector.inputs.handled["identities"] == identities
