"""GraphMonitor: listens to a running graph (ground truth, tracks, decisions, diagnostics) for the demo,
replay and tests, and knows when every card of a finished stream has been sorted."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.node import Node
from std_msgs.msg import Header

from cardsorter.core.types import BoxPx, MatchBand
from cardsorter.msg import (
    CardDetectionArray,
    CardIdentityArray,
    CardMatchArray,
    GroundTruth,
    SortEvent,
    TrackEnd,
)
from cardsorter.ros import conversions, qos
from cardsorter.sim.scoring import SortedCard, TruthCard

QUIET_AFTER_END_S = 1.0   # no new decision for this long after the stream ended: the run is over


class GraphMonitor(Node):
    def __init__(self, context: Context | None = None, name: str = "graph_monitor") -> None:
        super().__init__(name, context=context)
        self._lock = threading.Lock()
        self.truth_by_stamp: dict[int, list[TruthCard]] = {}
        self.tracks_by_stamp: dict[int, list[tuple[int, BoxPx]]] = {}
        self.track_ends: dict[int, TrackEnd] = {}
        self.sort_events: dict[int, SortEvent] = {}
        self.duplicate_sort_events: list[int] = []
        self.final_identities: dict[int, Any] = {}
        self.match_distances: dict[str, list[float]] = defaultdict(list)
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.frames = 0
        self.crops_requested: dict[int, int] = {}
        # Wall-clock receipt times per frame stamp, for frame-to-decision latency in the benchmark.
        self.detections_wall: dict[int, float] = {}
        self.tracks_wall: dict[int, float] = {}
        self.identities_wall: dict[int, float] = {}
        self.identities_stamps: set[int] = set()
        self.first_frame_wall: float | None = None
        self.last_decision_wall: float | None = None
        self.end_of_stream_wall: float | None = None
        self.create_subscription(GroundTruth, "camera/ground_truth", self._on_truth, qos.DECISIONS)
        self.create_subscription(CardDetectionArray, "tracks", self._on_tracks, qos.PIPELINE)
        self.create_subscription(TrackEnd, "track_ends", self._on_track_end, qos.DECISIONS)
        self.create_subscription(SortEvent, "sort_events", self._on_sort_event, qos.DECISIONS)
        self.create_subscription(CardIdentityArray, "identities", self._on_identities, qos.DECISIONS)
        self.create_subscription(CardMatchArray, "matches", self._on_matches, qos.PIPELINE)
        self.create_subscription(Header, "camera/end_of_stream", self._on_end, qos.DECISIONS)
        self.create_subscription(CardDetectionArray, "camera/detections", self._on_detections, qos.PIPELINE)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, qos.DIAGNOSTICS)

    def _on_truth(self, msg: GroundTruth) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        cards = [TruthCard(c.physical_id, c.card_id, c.in_database,
                           BoxPx.from_quad(conversions.quad_from_list(c.quad_px)),
                           tuple(n for n in c.nuisances.split(",") if n)) for c in msg.cards]
        with self._lock:
            self.truth_by_stamp[stamp] = cards

    def _on_detections(self, msg: CardDetectionArray) -> None:
        now = time.perf_counter()
        with self._lock:
            self.detections_wall[conversions.stamp_to_ns(msg.header.stamp)] = now

    def _on_tracks(self, msg: CardDetectionArray) -> None:
        stamp = conversions.stamp_to_ns(msg.header.stamp)
        now = time.perf_counter()
        with self._lock:
            self.tracks_wall[stamp] = now
            self.frames += 1
            if self.first_frame_wall is None:
                self.first_frame_wall = time.monotonic()
            self.tracks_by_stamp[stamp] = [(d.track_id, BoxPx(*[float(v) for v in d.bbox_px])) for d in msg.detections]
            self.crops_requested[stamp] = int(msg.crops_requested)

    def _on_track_end(self, msg: TrackEnd) -> None:
        with self._lock:
            self.track_ends[msg.track_id] = msg

    def _on_sort_event(self, msg: SortEvent) -> None:
        with self._lock:
            if msg.track_id in self.sort_events:
                self.duplicate_sort_events.append(msg.track_id)
            self.sort_events[msg.track_id] = msg
            self.last_decision_wall = time.monotonic()

    def _on_identities(self, msg: CardIdentityArray) -> None:
        now = time.perf_counter()
        with self._lock:
            stamp = conversions.stamp_to_ns(msg.header.stamp)
            self.identities_stamps.add(stamp)
            self.identities_wall.setdefault(stamp, now)
            for ident in msg.identities:
                if ident.final:
                    self.final_identities[ident.track_id] = ident

    def _on_matches(self, msg: CardMatchArray) -> None:
        with self._lock:
            for m in msg.matches:
                band = MatchBand(m.band).name.lower() if m.band in iter(MatchBand) else f"band_{m.band}"
                self.match_distances[band].append(float(m.distance_cos))

    def _on_end(self, msg: Header) -> None:
        with self._lock:
            self.end_of_stream_wall = time.monotonic()

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self._lock:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                values["_level"] = str(int.from_bytes(status.level, "little") if isinstance(status.level, bytes)
                                       else int(status.level))
                values["_message"] = status.message
                self.diagnostics[status.name] = values

    # --- queries --------------------------------------------------------------------------

    def all_sorted(self) -> bool:
        """The stream ended, every ended track has its sort event, and nothing new came for a while."""
        with self._lock:
            if self.end_of_stream_wall is None:
                return False
            if not set(self.track_ends) <= set(self.sort_events):
                return False
            last = max(self.end_of_stream_wall, self.last_decision_wall or 0.0)
            return time.monotonic() - last >= QUIET_AFTER_END_S

    def frame_done(self, stamp_ns: int) -> bool:
        """The frame went through the whole loop: tracked, and if it was embedded, matched and smoothed."""
        with self._lock:
            if stamp_ns not in self.crops_requested:
                return False
            return self.crops_requested[stamp_ns] == 0 or stamp_ns in self.identities_stamps

    def sorted_cards(self) -> list[SortedCard]:
        with self._lock:
            return [SortedCard(e.track_id, e.status, e.card.card_id, e.bin, e.reason) for e in self.sort_events.values()]
