"""Fake ``picamera2`` for tests: the API surface cardsorter uses, driven by a scripted rig.

Mirrors picamera2 0.3.38 (PLATFORM_NOTES.md §1): ``Picamera2(camera_num)``,
``create_preview_configuration`` (main + raw streams), ``start``, ``camera_configuration``,
``capture_request`` returning a ``CompletedRequest`` whose metadata and array come from the same
frame, ``release``, ``stop``, ``close``. What the sensor "sees" is scripted through ``RIG``
(test-only, see ``_rig.py``); the rig records the order of calls so tests can check it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from picamera2._rig import RIG
from picamera2.devices.imx500.imx500 import pack_output_tensor_info

__all__ = ["RIG", "CompletedRequest", "Picamera2"]

RAW_SIZE = (2028, 1520)   # the IMX500's 30 fps sensor mode


class CompletedRequest:
    def __init__(self, picam2: Picamera2, metadata: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.picam2 = picam2
        self._metadata = metadata
        self._arrays = arrays
        self._released = False

    def get_metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    def make_array(self, name: str) -> np.ndarray:
        if self._released:
            raise RuntimeError("request already released")
        return np.copy(self._arrays[name])

    def release(self) -> None:
        if not self._released:
            self._released = True
            RIG.events.append("release")
            RIG.held_requests -= 1


class Picamera2:
    def __init__(self, camera_num: int = 0) -> None:
        RIG.events.append(f"Picamera2({camera_num})")
        if not RIG.camera_present:
            raise IndexError("list index out of range")  # what picamera2 raises with no camera
        self.camera_num = camera_num
        self._config: dict[str, Any] | None = None
        self._started = False

    def create_preview_configuration(self, main: dict[str, Any] | None = None, lores: Any = None, raw: Any = None,
                                     transform: Any = None, colour_space: Any = None, buffer_count: int = 4,
                                     controls: dict[str, Any] | None = None, display: str = "main",
                                     encode: str = "main", **kwargs: Any) -> dict[str, Any]:
        main = {"format": "XBGR8888", "size": (640, 480), **(main or {})}
        return {"use_case": "preview", "main": main, "raw": {"format": "SRGGB10_CSI2P", "size": RAW_SIZE},
                "buffer_count": buffer_count, "controls": dict(controls or {})}

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self._config = config
        if self._config is None:
            raise RuntimeError("Camera has not been configured")
        RIG.events.append("start")
        self._started = True

    def camera_configuration(self) -> dict[str, Any]:
        if self._config is None:
            raise RuntimeError("Camera has not been configured")
        return self._config

    def capture_request(self, wait: Any = None, signal_function: Any = None, flush: Any = None) -> CompletedRequest:
        if not self._started:
            raise RuntimeError("Camera is not running")
        assert self._config is not None
        frame = RIG.next_frame()
        w, h = self._config["main"]["size"]
        fmt = self._config["main"]["format"]
        image = frame.image_bgr
        if image.shape[:2] != (h, w):
            raise RuntimeError(f"rig frame is {image.shape[1]}x{image.shape[0]}, main stream is {w}x{h}")
        if fmt == "XBGR8888":   # [R, G, B, A] in numpy order
            image = np.dstack([image[:, :, ::-1], np.full((h, w), 255, np.uint8)])
        elif fmt != "RGB888":   # RGB888 is [B, G, R] in numpy order
            raise RuntimeError(f"fake supports RGB888 and XBGR8888, not {fmt}")
        metadata: dict[str, Any] = {"SensorTimestamp": frame.sensor_timestamp_ns,
                                    "ScalerCrop": frame.scaler_crop}
        if frame.output_tensors is not None:
            # libcamera's IMX500 helper: one flat float array, each tensor with its first dimension varying
            # fastest (hence picamera2's reshape order='F'), and the sizes in a CnnOutputTensorInfoExported
            flat = np.concatenate([t.reshape(-1, order="F") for t in frame.output_tensors]).astype(np.float32)
            metadata["CnnOutputTensor"] = flat.tolist()
            metadata["CnnOutputTensorInfo"] = pack_output_tensor_info([tuple(t.shape) for t in frame.output_tensors])
        RIG.events.append("capture_request")
        RIG.held_requests += 1
        return CompletedRequest(self, metadata, {"main": image})

    def stop(self) -> None:
        RIG.events.append("stop")
        self._started = False

    def close(self) -> None:
        RIG.events.append("close")
