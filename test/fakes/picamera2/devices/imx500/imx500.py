"""Fake of picamera2.devices.imx500.imx500: IMX500 and NetworkIntrinsics (0.3.38 surface)."""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from picamera2._rig import RIG

FULL_SENSOR = (0, 0, 4056, 3040)
NETWORK_NAME_LEN = 64
MAX_NUM_TENSORS = 16
MAX_NUM_DIMENSIONS = 16


class OutputTensorInfo(ctypes.LittleEndianStructure):
    """struct OutputTensorInfo from libcamera (as picamera2 0.3.38 declares it)."""

    _fields_ = [("tensor_data_num", ctypes.c_uint32), ("num_dimensions", ctypes.c_uint32),
                ("size", ctypes.c_uint16 * MAX_NUM_DIMENSIONS)]


class CnnOutputTensorInfoExported(ctypes.LittleEndianStructure):
    """struct CnnOutputTensorInfoExported from libcamera: what metadata['CnnOutputTensorInfo'] holds."""

    _fields_ = [("network_name", ctypes.c_char * NETWORK_NAME_LEN), ("num_tensors", ctypes.c_uint32),
                ("info", OutputTensorInfo * MAX_NUM_TENSORS), ("frameCount", ctypes.c_uint8)]


def pack_output_tensor_info(shapes: list[tuple[int, ...]], network_name: str = "network") -> list[int]:
    """The bytes libcamera's IMX500 helper exports for these tensor shapes (sizes in dnnParams ordinal order)."""
    info = CnnOutputTensorInfoExported()
    info.network_name = network_name.encode()[:NETWORK_NAME_LEN - 1]
    info.num_tensors = len(shapes)
    for i, shape in enumerate(shapes):
        info.info[i].tensor_data_num = int(np.prod(shape))
        info.info[i].num_dimensions = len(shape)
        for j, size in enumerate(shape):
            info.info[i].size[j] = size
    return list(bytes(info))


class Rectangle:
    """The few members of libcamera.Rectangle that picamera2's IMX500 code and cardsorter use."""

    def __init__(self, x: int, y: int, width: int, height: int) -> None:
        self.x, self.y, self.width, self.height = int(x), int(y), int(width), int(height)

    def to_tuple(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.width, self.height)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rectangle) and self.to_tuple() == other.to_tuple()

    def __repr__(self) -> str:
        return f"Rectangle{self.to_tuple()}"


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
        """As the real one: stored as ``input_aspect_ratio`` {width, height}; True when they are equal."""
        ratio = self._get("input_aspect_ratio")
        return None if ratio is None else bool(ratio["width"] == ratio["height"])

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
        self.set_inference_roi_abs(FULL_SENSOR)             # as the real constructor does

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

    def set_inference_roi_abs(self, roi: tuple[int, int, int, int]) -> None:
        """Full-sensor (x, y, w, h); bounded to the sensor and stored as config['roi'] (a Rectangle)."""
        x, y, w, h = _bounded_to(tuple(int(v) for v in roi), FULL_SENSOR)  # type: ignore[arg-type]
        self.__cfg["roi"] = Rectangle(x, y, w, h)

    def set_inference_aspect_ratio(self, aspect_ratio: tuple[int, int]) -> None:
        """A centred crop of the full sensor with this aspect ratio (libcamera bounded_to_aspect_ratio)."""
        fw, fh = FULL_SENSOR[2], FULL_SENSOR[3]
        aw, ah = aspect_ratio
        if fw * ah > fh * aw:
            w, h = fh * aw // ah, fh
        else:
            w, h = fw, fw * ah // aw
        self.set_inference_roi_abs(((fw - w) // 2, (fh - h) // 2, w, h))

    def set_auto_aspect_ratio(self) -> None:
        RIG.events.append("set_auto_aspect_ratio")
        self.set_inference_aspect_ratio(self.__cfg["input_tensor_size"])

    def get_outputs(self, metadata: dict[str, Any], add_batch: bool = False) -> list[np.ndarray] | None:
        """As picamera2 0.3.38: the flat float tensor split by get_output_shapes, reshaped order='F'."""
        output_tensor = metadata.get("CnnOutputTensor")
        if not output_tensor:
            return None
        flat = np.fromiter(output_tensor, dtype=np.float32)
        outputs, offset = [], 0
        for shape in self.get_output_shapes(metadata):
            size = int(np.prod(shape))
            tensor = flat[offset:offset + size].reshape(shape, order="F")
            outputs.append(np.expand_dims(tensor, 0) if add_batch else tensor)
            offset += size
        return outputs

    def get_output_shapes(self, metadata: dict[str, Any]) -> list[list[int]]:
        info = metadata.get("CnnOutputTensorInfo")
        if not info:
            return []
        raw = bytes(info)
        size = ctypes.sizeof(CnnOutputTensorInfoExported)
        if len(raw) != size:
            raise ValueError(f"tensor info length {len(raw)} does not match expected size {size}")
        parsed = CnnOutputTensorInfoExported()
        ctypes.memmove(ctypes.addressof(parsed), raw, size)
        return [list(t.size)[:t.num_dimensions] for t in parsed.info[:parsed.num_tensors]]

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
        roi = self.__cfg.get("roi")
        if roi is not None and roi != Rectangle(0, 0, 0, 0):   # bounded to the user's ROI, as picamera2 does
            obj = _bounded_to(obj, roi.to_tuple())  # type: ignore[arg-type]
        obj_sensor = _scaled_by(obj, sensor_output_size, (width, height))  # type: ignore[arg-type]
        obj_bound = _bounded_to(obj_sensor, sensor_crop)
        obj_translated = (obj_bound[0] - sensor_crop[0], obj_bound[1] - sensor_crop[1], obj_bound[2], obj_bound[3])
        return _scaled_by(obj_translated, isp_output_size, (sensor_crop[2], sensor_crop[3]))  # type: ignore[arg-type]
