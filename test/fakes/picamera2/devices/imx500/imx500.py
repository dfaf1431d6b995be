"""Fake of picamera2.devices.imx500.imx500: IMX500 and NetworkIntrinsics (0.3.38 surface)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from picamera2._rig import RIG

FULL_SENSOR = (0, 0, 4056, 3040)


class NetworkIntrinsics:
    """Dict-backed like the real one; only the properties cardsorter reads."""

    def __init__(self, val: dict[str, Any] | None = None) -> None:
        self._intrinsics: dict[str, Any] = dict(val or {})

    def _get(self, key: str, default: Any = None) -> Any:
        return self._intrinsics.get(key, default)

    @property
    def task(self) -> str | None:
        return self._get("task")

    @task.setter
    def task(self, value: str) -> None:
        self._intrinsics["task"] = value

    @property
    def inference_rate(self) -> float | None:
        return self._get("inference_rate")

    @inference_rate.setter
    def inference_rate(self, value: float) -> None:
        self._intrinsics["inference_rate"] = value

    @property
    def bbox_normalization(self) -> bool | None:
        return self._get("bbox_normalization")

    @bbox_normalization.setter
    def bbox_normalization(self, value: bool) -> None:
        if value:
            self._intrinsics["bbox_normalization"] = True
        else:
            self._intrinsics.pop("bbox_normalization", None)

    @property
    def bbox_order(self) -> str:
        return str(self._get("bbox_order", "yx"))

    @bbox_order.setter
    def bbox_order(self, value: str) -> None:
        if value not in ("xy", "yx"):
            raise ValueError("bbox_order must be either 'xy' or 'yx'")
        self._intrinsics["bbox_order"] = value

    @property
    def postprocess(self) -> str | None:
        return self._get("postprocess")

    @postprocess.setter
    def postprocess(self, value: str) -> None:
        self._intrinsics["postprocess"] = value

    @property
    def preserve_aspect_ratio(self) -> bool | None:
        return self._get("preserve_aspect_ratio")

    @property
    def labels(self) -> list[str] | None:
        return self._get("labels")

    @labels.setter
    def labels(self, value: list[str]) -> None:
        self._intrinsics["labels"] = list(value)

    @property
    def ignore_dash_labels(self) -> bool | None:
        return self._get("ignore_dash_labels")

    def update_with_defaults(self) -> None:
        if self.inference_rate is None:
            self.inference_rate = 30.0


def _scaled_by(rect: tuple[int, int, int, int], numerator: tuple[int, int], denominator: tuple[int, int]
               ) -> tuple[int, int, int, int]:
    x, y, w, h = rect
    return (x * numerator[0] // denominator[0], y * numerator[1] // denominator[1],
            w * numerator[0] // denominator[0], h * numerator[1] // denominator[1])


def _bounded_to(rect: tuple[int, int, int, int], bound: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x0, y0 = max(rect[0], bound[0]), max(rect[1], bound[1])
    x1 = min(rect[0] + rect[2], bound[0] + bound[2])
    y1 = min(rect[1] + rect[3], bound[1] + bound[3])
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


class IMX500:
    def __init__(self, network_file: str, camera_id: str = "") -> None:
        RIG.events.append(f"IMX500({network_file})")
        if not RIG.camera_present:
            raise RuntimeError("IMX500: Requested camera dev-node not found")
        if not os.path.isfile(network_file):
            raise RuntimeError(f"Firmware file {os.path.abspath(network_file)} does not exist.")
        self._network_file = network_file
        self._intrinsics = NetworkIntrinsics(RIG.intrinsics) if RIG.intrinsics else None
        w, h = RIG.input_size_wh
        self.__cfg: dict[str, Any] = {"network_file": network_file, "input_tensor_size": (w, h),
                                      "input_tensor": {"width": w, "height": h}}

    @property
    def camera_num(self) -> int:
        return 0

    @property
    def network_intrinsics(self) -> NetworkIntrinsics | None:
        return self._intrinsics

    @property
    def config(self) -> dict[str, Any]:
        return self.__cfg

    def get_input_size(self) -> tuple[int, int]:
        return tuple(self.__cfg["input_tensor_size"])  # type: ignore[return-value]

    def show_network_fw_progress_bar(self) -> None:
        RIG.events.append("show_network_fw_progress_bar")

    def set_auto_aspect_ratio(self) -> None:
        RIG.events.append("set_auto_aspect_ratio")

    def get_outputs(self, metadata: dict[str, Any], add_batch: bool = False) -> list[np.ndarray] | None:
        output_tensor = metadata.get("CnnOutputTensor")
        if not output_tensor:
            return None
        flat = np.fromiter(output_tensor, dtype=np.float32)
        outputs, offset = [], 0
        for shape in metadata["CnnOutputTensorInfo"]:
            size = int(np.prod(shape))
            tensor = flat[offset:offset + size].reshape(shape, order="F")
            outputs.append(np.expand_dims(tensor, 0) if add_batch else tensor)
            offset += size
        return outputs

    def convert_inference_coords(self, coords: tuple[float, float, float, float], metadata: dict[str, Any],
                                 picam2: Any, stream: str = "main") -> tuple[int, int, int, int]:
        """Same arithmetic as picamera2 0.3.38 (libcamera Rectangle.scaled_by / bounded_to)."""
        isp_output_size = tuple(picam2.camera_configuration()[stream]["size"])
        sensor_output_size = tuple(picam2.camera_configuration()["raw"]["size"])
        scaler_crop = tuple(metadata["ScalerCrop"])
        y0, x0, y1, x1 = coords
        width, height = FULL_SENSOR[2], FULL_SENSOR[3]
        obj = tuple(int(v) for v in np.maximum(
            np.array([x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height]), 0).astype(np.int32))
        sensor_crop = _scaled_by(scaler_crop, sensor_output_size, (width, height))  # type: ignore[arg-type]
        obj_sensor = _scaled_by(obj, sensor_output_size, (width, height))  # type: ignore[arg-type]
        obj_bound = _bounded_to(obj_sensor, sensor_crop)
        obj_translated = (obj_bound[0] - sensor_crop[0], obj_bound[1] - sensor_crop[1], obj_bound[2], obj_bound[3])
        return _scaled_by(obj_translated, isp_output_size, (sensor_crop[2], sensor_crop[3]))  # type: ignore[arg-type]
