"""Per-node /diagnostics: rate, stage latency p50/p95, drops, errors and the node's own health."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

from cardsorter.core.stats import RateMeter, RollingWindow
from cardsorter.ros import qos

OK, WARN, ERROR, STALE = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE
LATENCY_WINDOW = 200          # samples kept for p50/p95
RATE_WINDOW_NS = 5_000_000_000
PUBLISH_PERIOD_S = 1.0


class StageMonitor:
    """Counts and times one node's work and publishes a DiagnosticStatus once a second."""

    def __init__(self, node: Node, stage: str,
                 health: Callable[[], tuple[bytes, str]] | None = None,
                 report: Callable[[], Mapping[str, str]] | None = None,
                 hardware_id: str = "") -> None:
        self._node = node
        self._name = f"cardsorter/{node.get_name()}"
        # What the status is about: the device a hardware node owns, else the node itself (its
        # fully qualified name, so two namespaced sorters report apart).
        self._hardware_id = hardware_id or node.get_fully_qualified_name().lstrip("/")
        self._stage = stage
        self._health = health or (lambda: (OK, "ok"))
        self._report = report   # node-specific values, computed only when diagnostics are published
        self._latency_ms = RollingWindow(LATENCY_WINDOW)
        self._rate = RateMeter(RATE_WINDOW_NS)
        self.counters: dict[str, int] = {"processed": 0, "dropped": 0, "errors": 0}
        self.values: dict[str, str] = {}
        self._last_error = ""
        self._last_drop = ""
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self._timer = node.create_timer(PUBLISH_PERIOD_S, self.publish)

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Time one unit of work (a callback's core call)."""
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            end = time.perf_counter_ns()
            self._latency_ms.add((end - start) / 1e6)
            self._rate.tick(time.monotonic_ns())
            self.counters["processed"] += 1

    def count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def error(self, message: str) -> None:
        self.counters["errors"] += 1
        self._last_error = message

    def drop(self, topic: str, reason: str, n: int = 1) -> None:
        """``n`` malformed inputs from ``topic`` were dropped (counted per topic; WARN in the status)."""
        self.counters["dropped"] += n
        self.count(f"dropped_{topic.strip('/').replace('/', '_')}", n)
        self._last_drop = f"{topic}: {reason}"

    def latency_ms(self) -> tuple[float, float]:
        return self._latency_ms.p50(), self._latency_ms.p95()

    def status(self) -> DiagnosticStatus:
        level, message = self._health()
        if level == OK and self._last_error:
            level, message = WARN, f"last error: {self._last_error}"
        elif level == OK and self._last_drop:
            level, message = WARN, f"{self.counters['dropped']} malformed inputs dropped, last on {self._last_drop}"
        p50, p95 = self.latency_ms()
        values = [KeyValue(key="stage", value=self._stage),
                  KeyValue(key="rate_hz", value=f"{self._rate.rate_hz(time.monotonic_ns()):.2f}"),
                  KeyValue(key="latency_p50_ms", value=f"{p50:.2f}"),
                  KeyValue(key="latency_p95_ms", value=f"{p95:.2f}")]
        values += [KeyValue(key=k, value=str(v)) for k, v in sorted(self.counters.items())]
        extra = {**self.values, **(self._report() if self._report else {})}
        values += [KeyValue(key=k, value=v) for k, v in sorted(extra.items())]
        return DiagnosticStatus(level=level, name=self._name, message=message, hardware_id=self._hardware_id,
                                values=values)

    def publish(self) -> None:
        msg = DiagnosticArray(status=[self.status()])
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(msg)
