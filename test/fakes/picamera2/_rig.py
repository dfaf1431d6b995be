"""Test-only script of what the fake camera sees (not part of the real picamera2 API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class RigFrame:
    image_bgr: np.ndarray
    sensor_timestamp_ns: int
    output_tensors: list[np.ndarray] | None     # None: the network firmware is still loading
    scaler_crop: tuple[int, int, int, int] = (0, 0, 4056, 3040)


@dataclass
class Rig:
    frames: list[RigFrame] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    camera_present: bool = True
    network_files: set[str] = field(default_factory=set)
    intrinsics: dict[str, Any] = field(default_factory=dict)
    input_size_wh: tuple[int, int] = (320, 320)
    held_requests: int = 0
    _next: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def next_frame(self) -> RigFrame:
        if self._next >= len(self.frames):
            raise RuntimeError("fake rig: no more scripted frames")
        frame = self.frames[self._next]
        self._next += 1
        return frame


RIG = Rig()
