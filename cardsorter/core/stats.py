"""Rolling statistics for diagnostics and benchmarks (values and times are inputs)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np


def percentile(values: Iterable[float], q: float) -> float:
    arr = np.fromiter(values, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


class RollingWindow:
    """The last ``size`` samples of a quantity (latencies in ms, for example)."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"window size must be > 0, got {size}")
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(float(value))

    def __len__(self) -> int:
        return len(self._values)

    def p50(self) -> float:
        return percentile(self._values, 50)

    def p95(self) -> float:
        return percentile(self._values, 95)


class RateMeter:
    """Events per second over a sliding window of event stamps (ns)."""

    def __init__(self, window_ns: int) -> None:
        self._window_ns = window_ns
        self._stamps: deque[int] = deque()

    def tick(self, stamp_ns: int) -> None:
        self._stamps.append(stamp_ns)
        self._trim(stamp_ns)

    def rate_hz(self, now_ns: int) -> float:
        self._trim(now_ns)
        return len(self._stamps) * 1e9 / self._window_ns

    def _trim(self, now_ns: int) -> None:
        while self._stamps and self._stamps[0] < now_ns - self._window_ns:
            self._stamps.popleft()
