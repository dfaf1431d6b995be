"""InputGuard: a node's received messages checked (core.validation) and converted; the rest counted and dropped."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from rclpy.node import Node

from cardsorter.core.printing import ViewReading, read_lines
from cardsorter.core.types import CardMatch, Detection, Identity, TrackEnd
from cardsorter.core.validation import (
    InputChecksConfig,
    StampGuard,
    closeup_request_problem,
    detection_problem,
    embedding_batch_problem,
    identity_problem,
    match_problem,
    reading_problem,
    track_end_problem,
    vector_problem,
)
from cardsorter.msg import (
    CardDetectionArray,
    CardEmbeddingArray,
    CardIdentityArray,
    CardMatchArray,
    CloseupRequest,
    PrintingReading,
)
from cardsorter.msg import TrackEnd as TrackEndMsg
from cardsorter.ros import conversions
from cardsorter.ros.diagnostics import StageMonitor

WARN_PERIOD_S = 5.0   # at most one warning per topic this often; the diagnostics count every drop
RECENT_REASONS = 32   # reasons kept per topic (tests, debugging)

M = TypeVar("M")


class InputGuard:
    """One node's input checks: ``stamp`` / ``embeddings`` / ``detections`` / ... return what may be
    used (None or fewer items when something was dropped); every drop is counted in the node's
    /diagnostics (``dropped_<topic>``) and warned about, throttled per topic, naming topic and reason.

    ``config``: the node's ``input`` settings; ``monotonic``: the node needs increasing stamps (the
    tracker); ``on_rebase`` runs when the stamp guard adopts a real clock jump.
    """

    def __init__(self, node: Node, monitor: StageMonitor, config: InputChecksConfig, monotonic: bool = False,
                 on_rebase: Callable[[], None] | None = None) -> None:
        self._node = node
        self._monitor = monitor
        self.config = config
        self._clock = StampGuard(self.config.stamp_horizon_ns, self.config.stamp_rebase_messages, monotonic)
        self._on_rebase = on_rebase
        self._warned_s: dict[str, float] = {}
        self._unwarned: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.recent: dict[str, deque[str]] = {}
        self.handled: Counter[str] = Counter()

    def counted(self, topic: str, callback: Callable[[M], Any]) -> Callable[[M], None]:
        """``callback`` for a subscription to ``topic`` that counts, in ``handled[topic]``, the messages
        whose callback has returned (however it returned). A replay waits on these counts to keep the
        graph in step, one frame at a time (ros/bag_replay.py)."""
        def wrapped(msg: M) -> None:
            try:
                callback(msg)
            finally:
                self.handled[topic] += 1
        return wrapped

    # --- counting ------------------------------------------------------------------------------

    def drop(self, topic: str, reason: str, n: int = 1) -> None:
        """Count ``n`` dropped inputs of ``topic`` and warn (at most every WARN_PERIOD_S per topic)."""
        self.dropped[topic] = self.dropped.get(topic, 0) + n
        self.recent.setdefault(topic, deque(maxlen=RECENT_REASONS)).append(reason)
        self._monitor.drop(topic, reason, n)
        now = time.monotonic()
        if now - self._warned_s.get(topic, -WARN_PERIOD_S) < WARN_PERIOD_S:
            self._unwarned[topic] = self._unwarned.get(topic, 0) + n
            return
        more = self._unwarned.pop(topic, 0)
        self._warned_s[topic] = now
        self._node.get_logger().warning(
            f"dropped {n} malformed message part(s) on '{topic}': {reason}"
            + (f" ({more} more dropped since the last warning)" if more else ""))

    # --- time ----------------------------------------------------------------------------------

    def stamp(self, topic: str, stamp_ns: int) -> bool:
        """True when ``stamp_ns`` may be used; a stamp beyond the horizon is dropped, never adopted."""
        rebased = self._clock.rebased
        problem = self._clock.check(stamp_ns)
        if problem is not None:
            self.drop(topic, problem)
            return False
        if self._clock.rebased != rebased:
            self._monitor.count("clock_rebased")
            self._node.get_logger().warning(
                f"'{topic}': {self.config.stamp_rebase_messages} consecutive messages agree on a new time "
                f"{stamp_ns}: the clock jumped, adopted")
            if self._on_rebase is not None:
                self._on_rebase()
        return True

    def not_ahead(self, topic: str, stamp_ns: int) -> bool:
        """True unless ``stamp_ns`` lies beyond the horizon ahead of the last good stamp (then it is
        dropped); the clock does not move (markers such as the end of a stream)."""
        last = self._clock.last_good_ns
        if last is not None and stamp_ns - last > self.config.stamp_horizon_ns:
            self.drop(topic, f"stamp {stamp_ns} is {(stamp_ns - last) / 1e9:.1f} s ahead of the last good stamp "
                             f"{last} (horizon {self.config.stamp_horizon_s:g} s)")
            return False
        return True

    def reset_clock(self) -> None:
        """A stream ended: the next stamp starts a new one."""
        self._clock.reset()

    @property
    def last_good_stamp_ns(self) -> int | None:
        return self._clock.last_good_ns

    # --- messages ------------------------------------------------------------------------------

    def embeddings(self, msg: CardEmbeddingArray, topic: str, model_id: str,
                   dimension: int) -> tuple[list[int], np.ndarray] | None:
        """Track ids and (N, dimension) vectors that can be searched; None when the whole message is
        for another model or dimension. Non-finite, zero or non-normalised vectors are dropped."""
        problem = embedding_batch_problem(msg.model_id, int(msg.dimension), model_id, dimension)
        if problem is not None:
            self.drop(topic, problem, max(1, len(msg.embeddings)))
            return None
        ids: list[int] = []
        rows: list[np.ndarray] = []
        for e in msg.embeddings:
            vec = np.frombuffer(e.vector, dtype=np.float32)
            problem = vector_problem(vec, dimension, self.config.norm_tolerance) or (
                f"track {e.track_id} twice in one message" if e.track_id in ids else None) or (
                f"track id {e.track_id}" if e.track_id < 0 else None)
            if problem is not None:
                self.drop(topic, f"track {e.track_id}: {problem}")
                continue
            ids.append(int(e.track_id))
            rows.append(vec)
        return ids, (np.stack(rows) if rows else np.zeros((0, dimension), np.float32))

    def detections(self, msg: CardDetectionArray, topic: str, width_px: int | None = None,
                   height_px: int | None = None, tracked: bool = False) -> list[Detection]:
        """The usable detections of ``msg``; corners or boxes outside the frame (by more than the
        margin) or non-finite are dropped one by one."""
        out: list[Detection] = []
        for d in msg.detections:
            quad = list(d.quad_px) if d.has_quad else None
            problem = detection_problem(list(d.bbox_px), quad, float(d.score), width_px, height_px,
                                        self.config.corner_margin_px)
            if problem is None and tracked and d.track_id < 0:
                problem = f"track id {d.track_id}"
            if problem is not None:
                self.drop(topic, f"detection (track {d.track_id}): {problem}")
                continue
            out.append(conversions.detection_from_msg(d))
        return out

    def matches(self, msg: CardMatchArray, topic: str) -> list[CardMatch]:
        """The well-formed matches of ``msg`` (bad band, track id or distances: dropped one by one)."""
        good = []
        for m in msg.matches:
            problem = match_problem(int(m.track_id), int(m.band), [float(c.distance_cos) for c in m.candidates
                                                                    if c.card_id], float(m.margin_to_runner_up))
            if problem is not None:
                self.drop(topic, f"match of track {m.track_id}: {problem}")
                continue
            good.append(m)
        msg_good = CardMatchArray(header=msg.header, database_id=msg.database_id, matches=good)
        return conversions.matches_from_msg(msg_good)

    def identities(self, msg: CardIdentityArray, topic: str, stamped: bool = False) -> list[Identity]:
        """The well-formed identities of ``msg``; with ``stamped`` each identity's stamp must also pass
        the stamp guard (nodes whose clock identities move)."""
        out = []
        for i in msg.identities:
            problem = identity_problem(int(i.track_id), int(i.state), bool(i.card.card_id), float(i.confidence),
                                       int(i.agreeing_views), int(i.views))
            if problem is not None:
                self.drop(topic, f"identity of track {i.track_id}: {problem}")
                continue
            if stamped and not self.stamp(topic, conversions.stamp_to_ns(i.header.stamp)):
                continue
            out.append(conversions.identity_from_msg(i))
        return out

    def track_end(self, msg: TrackEndMsg, topic: str, stamped: bool = False) -> TrackEnd | None:
        """The track end of ``msg`` if well formed (and, with ``stamped``, its last stamp good)."""
        problem = track_end_problem(int(msg.track_id), int(msg.first_stamp_ns), int(msg.last_stamp_ns),
                                    int(msg.frames_seen), list(msg.last_bbox_px), list(msg.velocity_px_per_s))
        if problem is not None:
            self.drop(topic, f"track end of track {msg.track_id}: {problem}")
            return None
        if stamped and not self.stamp(topic, int(msg.last_stamp_ns)):
            return None
        return conversions.track_end_from_msg(msg)

    def reading(self, msg: PrintingReading, topic: str) -> ViewReading | None:
        """The printing reader's lines of ``msg`` parsed (core/printing.py), or None when malformed."""
        lines, confidences = list(msg.lines), [float(c) for c in msg.confidences]
        problem = reading_problem(int(msg.track_id), lines, confidences, msg.finish)
        if problem is not None:
            self.drop(topic, f"reading of track {msg.track_id}: {problem}")
            return None
        reading = read_lines(zip(lines, confidences, strict=True), method=msg.method[:64])
        return ViewReading(reading.lines, reading.numbers, reading.codes, reading.method, msg.skipped[:256],
                           finish=msg.finish, finish_views=int(msg.finish_views) if msg.finish else 0,
                           finish_reason=msg.finish_reason[:256])

    def closeup_request(self, msg: CloseupRequest, topic: str, width_px: int, height_px: int,
                        height_max_px: int) -> bool:
        """True when the camera can cut the requested closeup from a frame of this size."""
        problem = closeup_request_problem(int(msg.track_id), [float(v) for v in msg.quad_px],
                                          int(msg.card_height_px), width_px, height_px, self.config.corner_margin_px,
                                          height_max_px)
        if problem is not None:
            self.drop(topic, f"closeup request for track {msg.track_id}: {problem}")
            return False
        return True
