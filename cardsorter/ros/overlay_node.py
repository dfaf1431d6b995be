"""OverlayNode: annotated image (debug/image, and as JPEG on debug/image/compressed), rviz2 markers
(debug/markers), vision_msgs where installed."""

from __future__ import annotations

import time
from typing import Any

import cv2
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from cardsorter.core.errors import ImageError
from cardsorter.core.overlay import STATE_COLOURS_BGR, draw_overlay, label_lines
from cardsorter.core.types import Detection, Identity, TrackState
from cardsorter.msg import CardDetectionArray, CardIdentityArray, TrackEnd
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import OverlayConfig, OverlaySettings

PX_TO_M = 0.001          # markers: 1 image pixel = 1 mm in the camera image plane frame
MARKER_LIFETIME_S = 0.5
FRAME_BUFFER = 8         # images kept while waiting for the matching tracks message


def _vision_msgs() -> Any:
    try:
        import vision_msgs.msg  # type: ignore[import-not-found]  # on the robot (ros-jazzy-vision-msgs)
        return vision_msgs.msg
    except ImportError:
        return None


class OverlayNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("overlay", **kwargs)
        self._settings = declare_settings(self, OverlaySettings, on_change={"view": self._reconfigure})
        self._cfg = self._settings.view
        self._identities: dict[int, Identity] = {}
        self._images: dict[int, Image] = {}
        self._monitor = StageMonitor(self, "overlay")
        self._inputs = InputGuard(self, self._monitor, self._settings.input)
        self._image_pub = self.create_publisher(Image, "debug/image", qos.DEBUG)
        self._jpeg_pub = self.create_publisher(CompressedImage, "debug/image/compressed", qos.DEBUG)
        self._last_jpeg_s = float("-inf")
        self._marker_pub = self.create_publisher(MarkerArray, "debug/markers", qos.DEBUG)
        vm = _vision_msgs()
        self._vm = vm
        self._det2d_pub = self.create_publisher(vm.Detection2DArray, "debug/detections_2d", qos.DEBUG) if vm else None
        self.create_subscription(Image, "camera/image_raw", self._on_image, qos.CAMERA_FRAMES_LATEST)
        self.create_subscription(CardDetectionArray, "tracks", self._on_tracks, qos.PIPELINE)
        self.create_subscription(CardIdentityArray, "identities", self._on_identities, qos.DECISIONS)
        self.create_subscription(TrackEnd, "track_ends", self._on_track_end, qos.DECISIONS)
        self.get_logger().info(f"overlay ready (vision_msgs {'found' if vm else 'not installed'})")

    def _reconfigure(self, config: OverlayConfig) -> None:
        self._cfg = config

    def _on_image(self, msg: Image) -> None:
        self._images[conversions.stamp_to_ns(msg.header.stamp)] = msg
        while len(self._images) > FRAME_BUFFER:
            self._images.pop(next(iter(self._images)))

    def _on_identities(self, msg: CardIdentityArray) -> None:
        for ident in self._inputs.identities(msg, "identities"):
            self._identities[ident.track_id] = ident

    def _on_track_end(self, msg: TrackEnd) -> None:
        self._identities.pop(msg.track_id, None)

    def _on_tracks(self, msg: CardDetectionArray) -> None:
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
        image = self._images.pop(stamp_ns, None)
        tracked = self._inputs.detections(msg, "tracks", image.width if image else None, image.height if image else None)
        with self._monitor.measure():
            if image is None:
                self._monitor.count("frames_missing")
            elif self._cfg.publish_image:
                self._publish_images(image, tracked, msg)
            if self._cfg.publish_markers:
                self._marker_pub.publish(self._markers(tracked, msg))
            if self._det2d_pub is not None:
                self._det2d_pub.publish(self._detections_2d(tracked, msg))

    def _publish_images(self, image: Image, tracked: list[Detection], msg: CardDetectionArray) -> None:
        """Drawn only while someone subscribes (rviz2 the raw image, the web view the JPEG): on the Pi an
        unwatched view is waste; the JPEG at most compressed_fps (a browser needs a few a second)."""
        raw = self._image_pub.get_subscription_count() > 0
        now_s = time.monotonic()
        jpeg = (self._jpeg_pub.get_subscription_count() > 0
                and now_s - self._last_jpeg_s >= 1.0 / self._cfg.compressed_fps)
        if not (raw or jpeg):
            return
        try:
            frame = conversions.image_from_msg(image)
        except ImageError as err:
            self._inputs.drop("camera/image_raw", str(err))
            return
        annotated = draw_overlay(frame, tracked, self._identities, self._cfg.image_scale)
        if raw:
            self._image_pub.publish(conversions.image_to_msg(annotated, msg.header))
        if jpeg:
            ok, buf = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, self._cfg.jpeg_quality])
            if ok:
                self._last_jpeg_s = now_s
                self._jpeg_pub.publish(CompressedImage(header=msg.header, format="jpeg", data=buf.tobytes()))

    def _markers(self, tracked: list[Detection], msg: CardDetectionArray) -> MarkerArray:
        hdr = msg.header
        hdr.frame_id = self._cfg.frame_id
        markers = [Marker(header=hdr, action=Marker.DELETEALL)]
        for det in tracked:
            ident = self._identities.get(det.track_id)
            b, g, r = STATE_COLOURS_BGR[ident.state if ident else TrackState.DETECTING]
            colour = ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=1.0)
            corners = det.quad_px or (
                (det.bbox_px.x, det.bbox_px.y), (det.bbox_px.x + det.bbox_px.w, det.bbox_px.y),
                (det.bbox_px.x + det.bbox_px.w, det.bbox_px.y + det.bbox_px.h), (det.bbox_px.x, det.bbox_px.y + det.bbox_px.h))
            outline = Marker(header=hdr, ns="cards", id=det.track_id, type=Marker.LINE_STRIP, action=Marker.ADD,
                             color=colour, lifetime=Duration(sec=0, nanosec=int(MARKER_LIFETIME_S * 1e9)))
            outline.pose.orientation.w = 1.0
            outline.scale.x = 3 * PX_TO_M
            outline.points = [Point(x=x * PX_TO_M, y=y * PX_TO_M, z=0.0) for x, y in (*corners, corners[0])]
            label = Marker(header=hdr, ns="labels", id=det.track_id, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                           color=colour, text="\n".join(label_lines(det, ident)),
                           lifetime=Duration(sec=0, nanosec=int(MARKER_LIFETIME_S * 1e9)))
            label.pose.orientation.w = 1.0
            label.pose.position.x = det.bbox_px.center[0] * PX_TO_M
            label.pose.position.y = det.bbox_px.y * PX_TO_M
            label.scale.z = 14 * PX_TO_M
            markers += [outline, label]
        return MarkerArray(markers=markers)

    def _detections_2d(self, tracked: list[Detection], msg: CardDetectionArray) -> Any:
        vm = self._vm
        out = vm.Detection2DArray(header=msg.header)
        for det in tracked:
            d = vm.Detection2D(header=msg.header, id=str(det.track_id))
            cx, cy = det.bbox_px.center
            d.bbox.center.position.x, d.bbox.center.position.y = float(cx), float(cy)
            d.bbox.size_x, d.bbox.size_y = float(det.bbox_px.w), float(det.bbox_px.h)
            ident = self._identities.get(det.track_id)
            hyp = vm.ObjectHypothesisWithPose()
            hyp.hypothesis.class_id = ident.card.card_id if ident and ident.card else det.class_name
            hyp.hypothesis.score = float(ident.confidence if ident and ident.card else det.score)
            d.results.append(hyp)
            out.detections.append(d)
        return out


def main() -> None:
    run_node(OverlayNode)
