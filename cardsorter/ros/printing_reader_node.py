"""PrintingReaderNode: the collector number read on closeups of cards whose art has several printings.

The matcher names every printing of a track's art when the database holds several (CardMatch.art_printings).
For such a track the reader asks the camera for a high-resolution closeup of the track's newest frame
(camera/closeup_requests, at most ``printing.views_max`` of them, ``printing.view_interval_frames`` apart),
reads it (backends/printing_ocr.py, RapidOCR on one thread) and publishes what it read on
``printing_readings``; the smoother votes over a track's readings (core/printing.py). Reading runs in its
own callback group, so the tracks and matches that schedule requests are never held up by OCR.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from cardsorter.backends.printing_ocr import PrintingReader, RapidOcrReader
from cardsorter.core.errors import CardsorterError
from cardsorter.core.finish import DEFAULT_FINISH_CONFIG, FinishTracker
from cardsorter.core.printing import PrintingConfig
from cardsorter.core.stats import RollingWindow
from cardsorter.msg import CardCloseup, CardDetectionArray, CardMatchArray, CloseupRequest, PrintingReading, TrackEnd
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import OK, WARN, StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import PrintingReaderSettings

TRACKS_KEPT = 256            # tracks waiting for closeups, oldest forgotten first


@dataclass
class _Wanted:
    requests: int = 0
    last_frame: int | None = None
    finish: FinishTracker = field(default_factory=lambda: FinishTracker(DEFAULT_FINISH_CONFIG))


class PrintingReaderNode(Node):
    def __init__(self, reader: PrintingReader | None = None, **kwargs: Any) -> None:
        """``reader``: the OCR reader to use (tests); None builds RapidOcrReader in a background thread."""
        super().__init__("printing_reader", **kwargs)
        self._cfg = declare_settings(self, PrintingReaderSettings, on_change={"printing": self._set_printing})
        self._printing: PrintingConfig = self._cfg.printing
        self._lock = threading.Lock()
        self._wanted: OrderedDict[int, _Wanted] = OrderedDict()
        self._read_ms = RollingWindow(100)
        self._reader: PrintingReader | None = reader
        self._reader_error = ""
        self._ready = threading.Event()
        self._monitor = StageMonitor(self, "read printing", health=self._health, report=self._report)
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        self._request_pub = self.create_publisher(CloseupRequest, "camera/closeup_requests", qos.DECISIONS)
        self._reading_pub = self.create_publisher(PrintingReading, "printing_readings", qos.DECISIONS)
        self.create_subscription(CardMatchArray, "matches", self._on_matches, qos.PIPELINE)
        self.create_subscription(CardDetectionArray, "tracks", self._on_tracks, qos.PIPELINE)
        self.create_subscription(TrackEnd, "track_ends", self._on_track_end, qos.DECISIONS)
        self.create_subscription(CardCloseup, "camera/closeups", self._on_closeup, qos.DECISIONS,
                                 callback_group=MutuallyExclusiveCallbackGroup())
        if reader is not None:
            self._ready.set()
        elif self._printing.views_max > 0:
            threading.Thread(target=self._load, name="printing_reader_load", daemon=True).start()
        else:
            self._reader_error = "off (printing.views_max is 0)"
            self._ready.set()

    def _load(self) -> None:
        try:
            self._reader = RapidOcrReader(fixed_boxes=self._cfg.fixed_boxes)
            self.get_logger().info("printing reader ready (RapidOCR, one thread)")
        except CardsorterError as err:
            self._reader_error = str(err)
            self.get_logger().warning(f"no printing reader: {err}; cards whose art has several printings stay "
                                      "AMBIGUOUS")
        finally:
            self._ready.set()

    def _set_printing(self, config: PrintingConfig) -> None:
        self._printing = config
        self.get_logger().info(f"printing settings changed: {config}")

    def _health(self) -> tuple[bytes, str]:
        if not self._ready.is_set():
            return OK, "loading the OCR models"
        if self._reader is None:
            return WARN, f"not reading: {self._reader_error}"
        return OK, f"{self._monitor.counters.get('readings', 0)} closeups read"

    def _report(self) -> dict[str, str]:
        return {"read_ms_p50": f"{self._read_ms.p50():.0f}" if len(self._read_ms) else "",
                "tracks_waiting": str(len(self._wanted))}

    def _reading(self) -> bool:
        return self._reader is not None and self._printing.views_max > 0

    # --- scheduling ------------------------------------------------------------------------------

    def _on_matches(self, msg: CardMatchArray) -> None:
        if not self._reading():
            return
        with self._lock:
            for m in msg.matches:
                # several printings of the art to tell apart, or one printing in several finishes
                several = len(m.art_printings) > 1 or any(len(c.finishes) > 1 for c in m.candidates[:1])
                if several and m.track_id >= 0 and m.track_id not in self._wanted:
                    self._wanted[int(m.track_id)] = _Wanted()
                    while len(self._wanted) > TRACKS_KEPT:
                        self._wanted.popitem(last=False)

    def _on_tracks(self, msg: CardDetectionArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self._inputs.stamp("tracks", stamp):   # every message: the guard follows the stream's time
            return
        if not self._wanted or not self._reading():
            return
        frame = int(msg.frame_index)
        cfg = self._printing
        requests = []
        with self._lock:
            for det in self._inputs.detections(msg, "tracks", tracked=True):
                want = self._wanted.get(det.track_id)
                if want is None or det.quad_px is None or want.requests >= cfg.views_max:
                    continue
                if want.last_frame is not None and frame - want.last_frame < cfg.view_interval_frames:
                    continue
                want.requests += 1
                want.last_frame = frame
                requests.append(CloseupRequest(header=msg.header, track_id=det.track_id,
                                               quad_px=conversions.quad_to_list(det.quad_px),
                                               card_height_px=cfg.card_height_px))
        for request in requests:
            self._request_pub.publish(request)
            self._monitor.count("closeups_requested")

    def _on_track_end(self, msg: TrackEnd) -> None:
        with self._lock:
            self._wanted.pop(int(msg.track_id), None)

    # --- reading ---------------------------------------------------------------------------------

    def _on_closeup(self, msg: CardCloseup) -> None:
        self._ready.wait()
        reader = self._reader
        reply = PrintingReading(header=msg.header, track_id=msg.track_id)
        if msg.error or reader is None:
            reply.skipped = msg.error or f"no reader: {self._reader_error}"
            self._monitor.count("closeups_unread")
            self._reading_pub.publish(reply)
            return
        try:
            image = conversions.image_from_msg(msg.image)
        except (CardsorterError, ValueError) as err:
            self._inputs.drop("camera/closeups", f"closeup of track {msg.track_id}: {err}")
            reply.skipped = f"bad closeup image: {err}"
            self._reading_pub.publish(reply)
            return
        with self._lock:
            want = self._wanted.get(int(msg.track_id))
        if want is not None:
            try:
                est = want.finish.add(image)
                reply.finish, reply.finish_views, reply.finish_reason = est.finish, est.views, est.reason[:256]
                if est.views >= want.finish.config.min_views:   # a verdict, not "too few views yet"
                    self._monitor.count(f"finish_{est.finish}")
            except ValueError as err:
                self._monitor.count("finish_views_unusable")
                reply.finish_reason = f"closeup not compared: {err}"[:256]
        start = time.perf_counter()
        try:
            with self._monitor.measure():
                reading = reader.read(image)
        except CardsorterError as err:
            self._monitor.error(f"reading track {msg.track_id}: {err}")
            reply.skipped = f"reader failed: {err}"
            self._reading_pub.publish(reply)
            return
        reply.read_ms = (time.perf_counter() - start) * 1000.0
        self._read_ms.add(reply.read_ms)
        reply.lines = [text for text, _ in reading.lines]
        reply.confidences = [float(conf) for _, conf in reading.lines]
        reply.method, reply.skipped = reading.method, reading.skipped
        self._monitor.count("readings")
        if reading.numbers:
            self._monitor.count("numbers_read")
        self._reading_pub.publish(reply)


def main() -> None:
    run_node(PrintingReaderNode)
