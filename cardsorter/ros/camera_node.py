"""CameraNode: frames and card detections with one stamp (imx500 | video | synthetic), ground truth when simulated."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from cardsorter.backends.detectors import open_detector
from cardsorter.core.errors import CameraError, CardsorterError
from cardsorter.core.printing import CLOSEUP_HEIGHT_MAX_PX
from cardsorter.msg import CardCloseup, CardDetectionArray, CloseupRequest, GroundTruth, GroundTruthCard
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import ERROR, OK, WARN, StageMonitor
from cardsorter.ros.lifecycle import ManagedNode
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import CameraSettings

EOS_AFTER_NS = 1_000_000_000   # the end-of-stream marker is stamped one second after the last frame
STALLED_AFTER_PERIODS = 10     # no frame for this many frame periods: the camera is reported stalled


class CameraNode(ManagedNode):
    """Managed: configure opens the camera, activate starts the capture thread, deactivate stops it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("camera", **kwargs)
        # every source's block is declared (read only: the source is opened once with these settings)
        self._cfg = declare_settings(self, CameraSettings)
        self._detector = open_detector(self._cfg.detector)
        self._image_pub = self.create_publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        self._det_pub = self.create_publisher(CardDetectionArray, "camera/detections", qos.PIPELINE)
        self._truth_pub = self.create_publisher(GroundTruth, "camera/ground_truth", qos.DECISIONS)
        self._eos_pub = self.create_publisher(Header, "camera/end_of_stream", qos.DECISIONS)
        self._closeup_pub = self.create_publisher(CardCloseup, "camera/closeups", qos.DECISIONS)
        # (stamp, frame index, published image) of the last frames: what a closeup request can name
        self._recent: deque[tuple[int, int, np.ndarray]] = deque(maxlen=self._cfg.closeup.buffer_frames)
        self._source: Any = None
        self._ended = False
        self._last_stamp_ns = 0               # newest stamp published, kept across deactivate / cleanup
        self._stamp_offset_ns: int | None = 0
        self._last_frame_wall = time.monotonic()
        self._monitor = StageMonitor(self, f"camera ({self._cfg.source})", health=self._health,
                                     hardware_id=f"camera/{self._cfg.source}")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        self.create_subscription(CloseupRequest, "camera/closeup_requests", self._on_closeup_request, qos.DECISIONS)

    def open_hardware(self) -> None:
        if self._cfg.source != "none":
            from cardsorter.backends.cameras import open_camera

            self._source = open_camera(self._cfg)
            self._ended = False
            self._stamp_offset_ns = None if self._last_stamp_ns else 0   # decided by the first frame
        self.get_logger().info(f"camera source {self._cfg.source} at {self._cfg.frame.fps:g} fps")

    def start_work(self) -> None:
        if self._source is not None and self._thread is None:
            self._stop.clear()
            self._last_frame_wall = time.monotonic()
            self._thread = threading.Thread(target=self._loop, name="camera", daemon=True)
            self._thread.start()

    def stop_work(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def release_hardware(self) -> None:
        self.stop_work()
        if self._source is not None:
            self._source.close()
            self._source = None

    def _health(self) -> tuple[bytes, str]:
        source = self._source
        if self._cfg.source == "none":
            return OK, "no source (bag replay)"
        if source is None or not self.active:
            return WARN, f"not capturing (lifecycle state {self.state_label})"
        if self._ended:
            return OK, "end of stream"
        silent_s = time.monotonic() - self._last_frame_wall
        if silent_s > STALLED_AFTER_PERIODS / self._cfg.frame.fps:
            return ERROR, f"stalled: no frame for {silent_s:.1f} s ({source.status})"
        status = source.status
        return (OK if status == "ok" else WARN if "loading" in status else ERROR), status

    def _loop(self) -> None:
        try:
            self._capture()
        except Exception:
            # Ctrl-C shuts the context down under a publish ("publisher's context is invalid"): an exit, not an error.
            if self._stop.is_set() or not self.context.ok():
                return
            raise

    def _capture(self) -> None:
        while not self._stop.is_set() and not self._ended:
            try:
                frame = self._source.read()
            except CameraError as err:
                self._monitor.error(str(err))
                self.get_logger().error(f"camera: {err}", throttle_duration_sec=5.0)
                continue
            except CardsorterError as err:
                self._monitor.error(str(err))
                self.get_logger().error(f"camera stopped: {err}")
                break
            if frame is None:
                if self._stop.is_set() or not self.context.ok():
                    return
                self._ended = True
                self._eos_pub.publish(conversions.header(self._last_stamp_ns + EOS_AFTER_NS, self._cfg.frame_id))
                self.get_logger().info(f"end of stream after {self._monitor.counters['processed']} frames")
                return
            if self._stop.is_set() or not self.context.ok():
                return
            if self._stamp_offset_ns is None:
                # A file or synthetic source opened again (cleanup, configure) starts its stamps over:
                # continue after the last stamp and its end-of-stream marker, so time never goes back.
                self._stamp_offset_ns = max(0, self._last_stamp_ns + 2 * EOS_AFTER_NS - frame.stamp_ns)
            stamp_ns = frame.stamp_ns + self._stamp_offset_ns
            with self._monitor.measure():
                detections = frame.detections if frame.detections is not None else self._detector.detect(frame.image_bgr)
                hdr = conversions.header(stamp_ns, self._cfg.frame_id)
                self._image_pub.publish(conversions.image_to_msg(frame.image_bgr, hdr))
                self._det_pub.publish(conversions.detections_to_msg(detections, hdr, frame.frame_index))
                if frame.ground_truth is not None:
                    self._truth_pub.publish(GroundTruth(header=hdr, frame_index=frame.frame_index, cards=[
                        GroundTruthCard(physical_id=g.physical_id, card_id=g.card_id, in_database=g.in_database,
                                        quad_px=conversions.quad_to_list(g.quad_px),
                                        nuisances=",".join(g.nuisances)) for g in frame.ground_truth]))
            self._monitor.count("detections", len(detections))
            self._recent.append((stamp_ns, frame.frame_index, frame.image_bgr))
            self._last_frame_wall = time.monotonic()
            self._last_stamp_ns = stamp_ns

    def _on_closeup_request(self, msg: CloseupRequest) -> None:
        """Cut the requested card from the named frame (the main stream where the source has one)."""
        from cardsorter.backends.cameras import MainStreamSource, cut_closeup

        stamp = conversions.stamp_to_ns(msg.header.stamp)
        frame = self._cfg.frame
        if not self._inputs.closeup_request(msg, "camera/closeup_requests", frame.width, frame.height,
                                            CLOSEUP_HEIGHT_MAX_PX):
            return
        reply = CardCloseup(header=msg.header, track_id=msg.track_id)
        found = next((entry for entry in list(self._recent) if entry[0] == stamp), None)
        source = self._source
        if found is None or source is None:
            reply.error = (f"frame {stamp} is no longer buffered (the last {self._recent.maxlen} frames are)"
                           if source is not None else "the camera is not capturing")
            self._monitor.count("closeups_missed")
        else:
            quad = conversions.quad_from_list(list(msg.quad_px))
            try:
                closeup = (source.closeup(found[1], quad, int(msg.card_height_px))
                           if isinstance(source, MainStreamSource)
                           else cut_closeup(found[2], quad, int(msg.card_height_px)))
            except (CardsorterError, ValueError, IndexError) as err:
                reply.error = f"closeup of frame {stamp} failed: {err}"
                self._monitor.count("closeups_failed")
            else:
                reply.image = conversions.image_to_msg(closeup.image_bgr, msg.header)
                reply.source_card_height_px = float(closeup.source_card_height_px)
                self._monitor.count("closeups")
        self._closeup_pub.publish(reply)


def main() -> None:
    run_node(CameraNode)
