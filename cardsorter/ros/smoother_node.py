"""SmootherNode: matches over several views → per-track identities, with one final decision per track."""

from __future__ import annotations

from typing import Any

from rclpy.node import Node

from cardsorter.core.printing import PrintingConfig
from cardsorter.core.smoothing import SmootherConfig, TemporalSmoother
from cardsorter.core.types import Identity
from cardsorter.msg import (
    CardDetectionArray,
    CardIdentityArray,
    CardMatchArray,
    PrintingReading,
    TrackEnd,
)
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import StageMonitor
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import SmootherSettings


class SmootherNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("smoother", **kwargs)
        self._cfg = declare_settings(self, SmootherSettings, on_change={"smoothing": self._reconfigure,
                                                                        "printing": self._reconfigure_printing})
        self._frame_id = self._cfg.frame_id
        self._smoother = TemporalSmoother(self._cfg.smoothing, self._cfg.printing)
        self._monitor = StageMonitor(self, "smooth",
                                     report=lambda: {"active_tracks": str(self._smoother.active_tracks)})
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        self._pub = self.create_publisher(CardIdentityArray, "identities", qos.DECISIONS)
        self.identities_published = 0
        self.create_subscription(CardDetectionArray, "tracks", self._inputs.counted("tracks", self._on_tracks),
                                 qos.PIPELINE)
        self.create_subscription(CardMatchArray, "matches", self._on_matches, qos.PIPELINE)
        self.create_subscription(TrackEnd, "track_ends", self._inputs.counted("track_ends", self._on_track_end),
                                 qos.DECISIONS)
        self.create_subscription(PrintingReading, "printing_readings", self._on_reading, qos.DECISIONS)

    def _publish(self, identities: list[Identity], header: Any, always: bool = False) -> None:
        if identities or always:
            self._pub.publish(CardIdentityArray(header=header, identities=[
                conversions.identity_to_msg(i, self._frame_id) for i in identities]))
            self.identities_published += 1
            self._monitor.count("finals", sum(1 for i in identities if i.final))

    def _reconfigure(self, config: SmootherConfig) -> None:
        self._smoother.reconfigure(config)
        self.get_logger().info(f"smoother settings changed: {config}")

    def _reconfigure_printing(self, config: PrintingConfig) -> None:
        self._smoother.reconfigure_printing(config)
        self.get_logger().info(f"printing settings changed: {config}")

    def _on_reading(self, msg: PrintingReading) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self._inputs.not_ahead("printing_readings", stamp):
            return
        reading = self._inputs.reading(msg, "printing_readings")
        if reading is None:
            return
        self._monitor.count("printing_readings")
        self._publish(self._smoother.observe_reading(int(msg.track_id), reading, stamp), msg.header)

    def _on_tracks(self, msg: CardDetectionArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self._inputs.stamp("tracks", stamp):
            return
        seen = [self._smoother.track_seen(d.track_id, stamp) for d in self._inputs.detections(msg, "tracks", tracked=True)]
        self._publish([i for i in seen if i is not None], msg.header)

    def _on_matches(self, msg: CardMatchArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        if not self._inputs.stamp("matches", stamp):
            return
        with self._monitor.measure():
            changed = self._smoother.observe(self._inputs.matches(msg, "matches"), stamp)
        self._publish(changed, msg.header, always=True)   # every frame's matches get an answer

    def _on_track_end(self, msg: TrackEnd) -> None:
        end = self._inputs.track_end(msg, "track_ends", stamped=True)
        final = self._smoother.end_track(end) if end is not None else None
        if final is not None:
            self._publish([final], conversions.header(final.stamp_ns, self._frame_id))

    @property
    def inputs(self) -> InputGuard:
        return self._inputs


def main() -> None:
    run_node(SmootherNode)
