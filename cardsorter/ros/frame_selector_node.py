"""FrameSelectorNode: pairs frames with detections, tracks cards, gates and warps crops for the embedder."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from cardsorter.config import resolve_path
from cardsorter.core.errors import ImageError
from cardsorter.core.frame_selection import FrameSelector, FrameSelectorConfig
from cardsorter.core.model_manifest import load_manifest
from cardsorter.core.smoothing import is_settled
from cardsorter.core.tracking import CardTracker
from cardsorter.core.types import TrackEnd
from cardsorter.msg import CardCropArray, CardDetectionArray, CardIdentityArray
from cardsorter.msg import TrackEnd as TrackEndMsg
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import FrameSelectorSettings

# A frame waits this many newer frames for its detections (and vice versa) before it is dropped.
PAIRING_BUFFER = 6


class FrameSelectorNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("frame_selector", **kwargs)
        self._cfg = declare_settings(self, FrameSelectorSettings, on_change={"gate": self._reconfigure})
        manifest = load_manifest(resolve_path(self._cfg.model_manifest))
        self._tracker = CardTracker(self._cfg.tracker)
        self._selector = FrameSelector(self._cfg.gate, manifest.input_size_wh)
        self._images: dict[int, Image] = {}
        self.tracks_published = 0
        self.track_ends_published = 0
        self._detections: dict[int, CardDetectionArray] = {}
        self._monitor = StageMonitor(self, "track+gate+warp", report=self._gate_report)
        self._inputs = InputGuard(self, self._monitor, self._cfg.input, monotonic=True,
                                  on_rebase=lambda: self._publish_ends(self._tracker.restart()))
        self._tracks_pub = self.create_publisher(CardDetectionArray, "tracks", qos.PIPELINE)
        self._crops_pub = self.create_publisher(CardCropArray, "crops", qos.PIPELINE)
        self._ends_pub = self.create_publisher(TrackEndMsg, "track_ends", qos.DECISIONS)
        self.create_subscription(Image, "camera/image_raw", self._on_image, qos.CAMERA_FRAMES_LATEST)
        self.create_subscription(CardDetectionArray, "camera/detections", self._on_detections, qos.PIPELINE)
        self.create_subscription(CardIdentityArray, "identities",
                                 self._inputs.counted("identities", self._on_identities), qos.DECISIONS)
        self.create_subscription(Header, "camera/end_of_stream", self._on_end_of_stream, qos.DECISIONS)
        self.get_logger().info(f"crops warped to {manifest.input_size_wh[0]}x{manifest.input_size_wh[1]} "
                               f"for model {manifest.model_id}")

    def _on_image(self, msg: Image) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if stamp in self._detections:
            self._process(msg, self._detections.pop(stamp))
        else:
            self._images[stamp] = msg
            self._trim(self._images, "frames_unpaired")

    def _on_detections(self, msg: CardDetectionArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if stamp in self._images:
            self._process(self._images.pop(stamp), msg)
        else:
            self._detections[stamp] = msg
            self._trim(self._detections, "detections_unpaired")

    def _trim(self, buffer: dict[int, Any], counter: str) -> None:
        while len(buffer) > PAIRING_BUFFER:
            buffer.pop(min(buffer))
            self._monitor.count(counter)

    def _reconfigure(self, config: FrameSelectorConfig) -> None:
        self._selector.reconfigure(config)
        self.get_logger().info(f"gate settings changed: {config}")

    def _process(self, image: Image, dets: CardDetectionArray) -> None:
        stamp = conversions.stamp_to_ns(dets.header.stamp)
        try:
            frame = conversions.image_from_msg(image)
        except ImageError as err:
            self._inputs.drop("camera/image_raw", f"frame {stamp}: {err}")
            return
        detections = self._inputs.detections(dets, "camera/detections", frame.shape[1], frame.shape[0])
        if not self._inputs.stamp("camera/detections", stamp):
            return
        newest = self._tracker.last_stamp_ns
        if newest is not None and stamp < newest:
            # Newer than the last frame but older than the end-of-stream marker, which flushed the tracker
            # at its own stamp (1 s after the camera's last frame): a last frame that arrived after the
            # marker (other topic, other process). Its card's track has ended: counted and dropped.
            self._monitor.count("frames_after_end_of_stream")
            self.get_logger().info(f"dropped frame {stamp}: it arrived after the end of stream ({newest})",
                                   throttle_duration_sec=5.0)
            return
        with self._monitor.measure():
            tracked, ended = self._tracker.update(detections, stamp)
            crops = self._selector.select(frame, tracked)
        if crops:
            self._crops_pub.publish(conversions.crops_to_msg(crops, dets.header, dets.frame_index))
        tracks = conversions.detections_to_msg(tracked, dets.header, dets.frame_index)
        tracks.crops_requested = len(crops)
        self._tracks_pub.publish(tracks)
        self.tracks_published += 1
        self._publish_ends(ended)

    def _gate_report(self) -> dict[str, str]:
        stats = self._selector.stats
        return {"frames": str(stats.frames), "detections": str(stats.detections),
                "crops_requested": str(stats.crops_requested), "embedding_runs_saved": f"{stats.saved_ratio:.3f}",
                "reduction_factor": f"{stats.reduction_factor:.2f}",
                **{f"skipped_{reason}": str(n) for reason, n in sorted(stats.skipped.items())}}

    def _publish_ends(self, ended: list[TrackEnd]) -> None:
        for end in ended:
            self._selector.forget(end.track_id)
            self._ends_pub.publish(conversions.track_end_to_msg(end, self._cfg.frame_id))
            self.track_ends_published += 1

    def _on_identities(self, msg: CardIdentityArray) -> None:
        for ident in self._inputs.identities(msg, "identities"):
            self._selector.set_settled(ident.track_id, is_settled(ident.state, ident.final))

    def _on_end_of_stream(self, msg: Header) -> None:
        stamp = conversions.stamp_to_ns(msg.stamp)
        if not self._inputs.not_ahead("camera/end_of_stream", stamp):
            return
        newest = self._tracker.last_stamp_ns
        self._publish_ends(self._tracker.flush(max(stamp, newest or stamp)))
        self.get_logger().info("end of stream: every open track ended")

    @property
    def selector(self) -> FrameSelector:
        return self._selector

    @property
    def inputs(self) -> InputGuard:
        return self._inputs


def main() -> None:
    run_node(FrameSelectorNode)
