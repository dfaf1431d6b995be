"""rosbag2 (MCAP) record and replay with the `rosbags` library: bags play with `ros2 bag play` on the
robot, and replay here without a ROS install, through the real graph, with the bag's own stamps."""

from __future__ import annotations

import logging
import pathlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rclpy.context import Context
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from cardsorter.config import REPO_ROOT
from cardsorter.core.errors import BagError
from cardsorter.msg import (
    CardCropArray,
    CardDetectionArray,
    CardEmbeddingArray,
    CardIdentityArray,
    CardMatchArray,
    GroundTruth,
    SortEvent,
    TrackEnd,
)
from cardsorter.ros import conversions, qos

if TYPE_CHECKING:
    from rosbags.rosbag2 import Writer

log = logging.getLogger("cardsorter.bags")

# topic → (ROS type name, rclpy class, QoS): what `record` knows how to subscribe to.
TOPICS: dict[str, tuple[str, type, Any]] = {
    "camera/image_raw": ("sensor_msgs/msg/Image", Image, qos.CAMERA_FRAMES),
    "camera/detections": ("cardsorter/msg/CardDetectionArray", CardDetectionArray, qos.PIPELINE),
    "camera/ground_truth": ("cardsorter/msg/GroundTruth", GroundTruth, qos.DECISIONS),
    "camera/end_of_stream": ("std_msgs/msg/Header", Header, qos.DECISIONS),
    "tracks": ("cardsorter/msg/CardDetectionArray", CardDetectionArray, qos.PIPELINE),
    "crops": ("cardsorter/msg/CardCropArray", CardCropArray, qos.PIPELINE),
    "embeddings": ("cardsorter/msg/CardEmbeddingArray", CardEmbeddingArray, qos.PIPELINE),
    "matches": ("cardsorter/msg/CardMatchArray", CardMatchArray, qos.PIPELINE),
    "identities": ("cardsorter/msg/CardIdentityArray", CardIdentityArray, qos.DECISIONS),
    "track_ends": ("cardsorter/msg/TrackEnd", TrackEnd, qos.DECISIONS),
    "sort_events": ("cardsorter/msg/SortEvent", SortEvent, qos.DECISIONS),
}
DEFAULT_RECORD_TOPICS = ("camera/image_raw", "camera/detections", "camera/ground_truth", "camera/end_of_stream",
                         "tracks", "matches", "identities", "track_ends", "sort_events")


def msg_dir() -> pathlib.Path:
    for candidate in (REPO_ROOT / "msg",):
        if candidate.is_dir():
            return candidate
    from ament_index_python.packages import get_package_share_directory

    return pathlib.Path(get_package_share_directory("cardsorter")) / "msg"


def typestore() -> Any:
    """The Jazzy typestore plus every cardsorter message, from the .msg files."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict[str, Any] = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(encoding="utf-8"), f"cardsorter/msg/{path.stem}"))
    store.register(types)
    return store


def _ros_topic(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


class BagRecorder(Node):
    """Subscribes to topics as serialized CDR (no deserialisation) and writes them to an MCAP bag."""

    def __init__(self, path: pathlib.Path, topics: Sequence[str], context: Context | None = None,
                 compress: bool = True) -> None:
        super().__init__("bag_recorder", context=context)
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        unknown = [t for t in topics if t.lstrip("/") not in TOPICS]
        if unknown:
            raise BagError(f"cannot record unknown topics {unknown} (known: {', '.join(TOPICS)})")
        if path.exists():
            raise BagError(f"{path} exists already: a bag is never overwritten")
        self._lock = threading.Lock()
        self._writer: Writer | None = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        if compress:  # zstd chunks inside the MCAP file: ros2 bag play reads them as they are
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        store = typestore()
        self.counts: dict[str, int] = {}
        for topic in topics:
            name = topic.lstrip("/")
            type_name, cls, profile = TOPICS[name]
            conn = self._writer.add_connection(_ros_topic(name), type_name, typestore=store)
            self.counts[name] = 0
            self.create_subscription(cls, name, self._writer_callback(conn, name), profile, raw=True)
        self.path = path

    def _writer_callback(self, conn: Any, name: str) -> Callable[[bytes], None]:
        def write(raw: bytes) -> None:
            with self._lock:
                if self._writer is not None:
                    self._writer.write(conn, time.time_ns(), raw)
                    self.counts[name] += 1
        return write

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


@dataclass(frozen=True)
class BagFrame:
    stamp_ns: int
    image_raw: bytes
    detections: CardDetectionArray | None


def find_image_topic(connections: Sequence[Any], wanted: str | None) -> str:
    images: list[str] = [c.topic for c in connections if c.msgtype == "sensor_msgs/msg/Image"]
    if wanted:
        if _ros_topic(wanted.lstrip("/")) not in images and wanted not in images:
            raise BagError(f"image topic {wanted} not in the bag (image topics: {images or 'none'})")
        return wanted if wanted in images else _ros_topic(wanted.lstrip("/"))
    raw = [t for t in images if t.endswith("image_raw")]
    if len(raw) == 1 or len(images) == 1:
        return (raw or images)[0]
    raise BagError(f"the bag has {len(images)} image topics {images}: choose one with --image-topic")


def read_frames(bag: pathlib.Path, image_topic: str | None = None, use_detections: bool = True) -> Iterator[BagFrame]:
    """Frames in bag order with their detections when the bag has them (paired by header stamp)."""
    from rosbags.rosbag2 import Reader

    if not bag.exists():
        raise BagError(f"bag {bag} does not exist")
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as err:
        raise BagError(f"cannot open bag {bag}: {err}") from err
    try:
        topic = find_image_topic(reader.connections, image_topic)
        image_conns = [c for c in reader.connections if c.topic == topic]
        det_conns = [c for c in reader.connections
                     if c.msgtype == "cardsorter/msg/CardDetectionArray" and c.topic.endswith("camera/detections")]
        detections: dict[int, CardDetectionArray] = {}
        if use_detections and det_conns:
            for _conn, _t, raw in reader.messages(connections=det_conns):
                msg = deserialize_message(bytes(raw), CardDetectionArray)
                detections[conversions.stamp_to_ns(msg.header.stamp)] = msg
        for _conn, _t, raw in reader.messages(connections=image_conns):
            data = bytes(raw)
            image = deserialize_message(data, Image)
            stamp = conversions.stamp_to_ns(image.header.stamp)
            yield BagFrame(stamp, data, detections.get(stamp) if det_conns and use_detections else None)
    finally:
        reader.close()


def bag_has_detections(bag: pathlib.Path) -> bool:
    from rosbags.rosbag2 import Reader

    with Reader(bag) as reader:
        return any(c.msgtype == "cardsorter/msg/CardDetectionArray" and c.topic.endswith("camera/detections")
                   for c in reader.connections)


class FramePublisher(Node):
    """Publishes bag frames (raw bytes, as recorded) and their detections into the graph."""

    def __init__(self, context: Context | None = None) -> None:
        super().__init__("bag_player", context=context)
        self._image_pub = self.create_publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        self._det_pub = self.create_publisher(CardDetectionArray, "camera/detections", qos.PIPELINE)
        self._eos_pub = self.create_publisher(Header, "camera/end_of_stream", qos.DECISIONS)

    def publish_frame(self, image_raw: bytes, detections: CardDetectionArray) -> None:
        self._det_pub.publish(detections)
        self._image_pub.publish(image_raw)

    def end_of_stream(self, stamp_ns: int, frame_id: str) -> None:
        self._eos_pub.publish(conversions.header(stamp_ns, frame_id))
