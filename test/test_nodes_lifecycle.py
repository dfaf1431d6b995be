"""Managed nodes (configure opens, activate starts, deactivate/cleanup release) and end of stream over real DDS."""

from __future__ import annotations

import pathlib

import pytest
from cardsorter.msg import CardCropArray, CardDetectionArray
from cardsorter.msg import TrackEnd as TrackEndMsg
from rosutil import Collector, overrides, ros_context, spin_until
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from test_nodes_perception import card_frame

from cardsorter.core.errors import CardsorterError
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.camera_node import CameraNode
from cardsorter.ros.embedder_node import EmbedderNode
from cardsorter.ros.frame_selector_node import FrameSelectorNode
from cardsorter.ros.graph import Graph
from cardsorter.ros.lifecycle import SUCCESS, activate
from cardsorter.ros.sorter_node import SorterNode
from cardsorter.sim.catalog import generate_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cat") / "catalog"
    generate_catalog(path, cards=4, seed=5, unknown=1)
    return path


def test_camera_opens_at_configure_publishes_only_while_active_and_releases_at_cleanup(catalog: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        col = Collector(context, {"camera/detections": (CardDetectionArray, qos.PIPELINE)})
        executor.add_node(col)
        node = CameraNode(context=context, parameter_overrides=overrides(
            "camera", source="synthetic", **{"synthetic.catalog_dir": str(catalog), "synthetic.cards": 50,
                                            "fps": 20.0, "synthetic.realtime": True}))
        executor.add_node(node)
        frames = col.received["camera/detections"]
        assert node.state_label == "unconfigured" and node._source is None, "built: parameters only"
        spin_until(executor, lambda: False, 0.5)
        assert node.trigger_configure() == SUCCESS and node._source is not None
        spin_until(executor, lambda: False, 0.5)
        assert frames == [], "configured but not active: no frame"
        assert node.trigger_activate() == SUCCESS
        assert spin_until(executor, lambda: len(frames) >= 5, 30.0)
        assert node.trigger_deactivate() == SUCCESS
        published = node._last_stamp_ns           # the last frame the capture thread sent
        # frames already in flight arrive (however late DDS delivers them on a loaded machine) ...
        assert spin_until(executor, lambda: any(cv.stamp_to_ns(m.header.stamp) == published for m in frames), 10.0)
        spin_until(executor, lambda: False, 0.7)
        # ... and nothing was sent after the deactivation
        assert node._last_stamp_ns == published, "deactivated: the capture thread stopped"
        assert max(cv.stamp_to_ns(m.header.stamp) for m in frames) == published
        seen = len(frames)
        assert node.trigger_cleanup() == SUCCESS and node._source is None
        assert node.state_label == "unconfigured"
        # And up again: configure reopens the source, whose stamps continue after the last ones (the
        # synthetic belt starts at the same start_stamp_ns again; downstream time must not go back).
        last = max(cv.stamp_to_ns(m.header.stamp) for m in frames)
        activate(node)
        assert spin_until(executor, lambda: len(frames) > seen, 30.0)
        assert min(cv.stamp_to_ns(m.header.stamp) for m in frames[seen:]) > last


def test_a_camera_that_cannot_open_fails_configure_naming_why(tmp_path: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        node = CameraNode(context=context, parameter_overrides=overrides(
            "camera", source="video", **{"video.uri": str(tmp_path / "no-such-folder")}))
        executor.add_node(node)
        with pytest.raises(CardsorterError, match="could not be configured: .*no-such-folder"):
            activate(node)
        assert node.state_label == "unconfigured"


def test_embedder_subscribes_to_crops_only_while_active() -> None:
    with ros_context() as (context, executor):
        col = Collector(context, {})
        executor.add_node(col)
        node = EmbedderNode(context=context, parameter_overrides=overrides("embedder"))
        executor.add_node(node)
        pub = col.publisher(CardCropArray, "crops", qos.PIPELINE)
        assert node.trigger_configure() == SUCCESS and node._embedder is not None
        assert node.count_subscribers("crops") == 0
        assert node.trigger_activate() == SUCCESS
        assert spin_until(executor, lambda: pub.get_subscription_count() == 1, 10.0)
        assert node.trigger_deactivate() == SUCCESS
        assert spin_until(executor, lambda: pub.get_subscription_count() == 0, 10.0)
        assert node.trigger_cleanup() == SUCCESS and node._embedder is None


def test_sorter_opens_its_inventory_at_configure_and_serves_only_while_active(tmp_path: pathlib.Path) -> None:
    inventory = tmp_path / "inventory.sqlite"
    with ros_context() as (context, executor):
        node = SorterNode(context=context, parameter_overrides=overrides("sorter", inventory_path=str(inventory)))
        executor.add_node(node)
        assert not inventory.exists(), "built: nothing opened"
        activate(node)
        assert inventory.exists() and node.count_subscribers("identities") == 1
        assert node.trigger_deactivate() == SUCCESS
        assert node.count_subscribers("identities") == 0
        assert node.trigger_cleanup() == SUCCESS


def test_frame_selector_survives_frames_that_arrive_after_the_end_of_stream() -> None:
    """Under ros2 launch the last frames (camera/image_raw, camera/detections) can arrive after
    camera/end_of_stream, which is stamped 1 s after the last frame: counted and dropped, never fatal."""
    t0, frame_ns = 1_700_000_000_000_000_000, 100_000_000
    with ros_context() as (context, executor):
        col = Collector(context, {"track_ends": (TrackEndMsg, qos.DECISIONS),
                                  "tracks": (CardDetectionArray, qos.PIPELINE)})
        executor.add_node(col)
        node = FrameSelectorNode(context=context, parameter_overrides=overrides("frame_selector"))
        executor.add_node(node)
        img_pub = col.publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        det_pub = col.publisher(CardDetectionArray, "camera/detections", qos.PIPELINE)
        eos_pub = col.publisher(Header, "camera/end_of_stream", qos.DECISIONS)
        assert spin_until(executor, lambda: min(p.get_subscription_count() for p in (img_pub, det_pub, eos_pub)) > 0)

        def send(i: int) -> None:
            frame, det = card_frame(i * 10.0)
            hdr = cv.header(t0 + i * frame_ns, "cam")
            det_pub.publish(cv.detections_to_msg([det], hdr, i))
            img_pub.publish(cv.image_to_msg(frame, hdr))

        for i in range(3):
            send(i)
            assert spin_until(executor, lambda n=i: len(col.received["tracks"]) > n, 20.0)
        eos_pub.publish(cv.header(t0 + 4 * frame_ns + 1_000_000_000, "cam"))
        assert spin_until(executor, lambda: len(col.received["track_ends"]) == 1, 20.0)
        send(3)   # the late last frame
        assert spin_until(executor, lambda: node._monitor.counters.get("frames_after_end_of_stream", 0) == 1, 20.0)
        # The node still works: a new stream (newer stamps) is tracked again.
        send(40)
        assert spin_until(executor, lambda: len(col.received["tracks"]) == 4, 20.0)
        assert len(col.received["track_ends"]) == 1


def test_graph_brings_every_managed_node_to_active_and_reports_a_failure(catalog: pathlib.Path, tmp_path: pathlib.Path) -> None:
    camera = {"source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.realtime": True}
    with Graph(None, ("camera", "embedder", "sorter"),
               {"camera": camera, "sorter": {"inventory_path": str(tmp_path / "inv.sqlite")}}) as graph:
        assert {name: n.state_label for name, n in graph.nodes.items()} == dict.fromkeys(graph.nodes, "active")
    with pytest.raises(CardsorterError, match="'camera' could not be configured"):
        Graph(None, ("camera",), {"camera": {"source": "video", "video.uri": str(tmp_path / "missing")}})
