"""Fake of hailo_platform.pyhailort.pyhailort (HailoRT 4.23): the names the InferModel API exposes."""

from __future__ import annotations

import enum
import io
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np


class HailoRTException(Exception):
    pass


class FormatType(enum.Enum):
    AUTO = 0
    UINT8 = 1
    UINT16 = 2
    FLOAT32 = 3


class FormatOrder(enum.Enum):
    AUTO = 0
    NHWC = 1
    NHCW = 2
    NC = 3
    NHW = 4
    NCHW = 5
    HAILO_NMS_BY_CLASS = 6


class HailoSchedulingAlgorithm(enum.Enum):
    NONE = 0
    ROUND_ROBIN = 1


class HailoStreamInterface(enum.Enum):
    PCIe = 0
    INTEGRATED = 1
    ETH = 2


class _QuantInfo:
    def __init__(self, scale: float, zp: float) -> None:
        self.qp_scale = scale
        self.qp_zp = zp
        self.limvals_min = (0 - zp) * scale
        self.limvals_max = (255 - zp) * scale


class _Format:
    def __init__(self, type_: FormatType, order: FormatOrder) -> None:
        self.type = type_
        self.order = order


class HEF:
    """HEF(hef_source: str | bytes): parses the fake .npz."""

    def __init__(self, hef_source: str | bytes) -> None:
        data = Path(hef_source).read_bytes() if isinstance(hef_source, str) else bytes(hef_source)
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            self._d = {k: z[k] for k in z.files}
            self.input_name = str(self._d["input_name"])
            self.output_name = str(self._d["output_name"])
        except Exception as err:
            raise HailoRTException(f"Failed to parse HEF: {err}") from err

    def get_input_vstream_infos(self) -> list[Any]:
        return [_VStreamInfo(self.input_name, tuple(int(v) for v in self._d["input_shape"]),
                             _Format(FormatType.UINT8, FormatOrder.NHWC))]

    def get_output_vstream_infos(self) -> list[Any]:
        return [_VStreamInfo(self.output_name, tuple(int(v) for v in self._d["output_shape"]),
                             _Format(FormatType.UINT8, FormatOrder.NC))]


class _VStreamInfo:
    def __init__(self, name: str, shape: tuple[int, ...], fmt: _Format) -> None:
        self.name = name
        self.shape = shape
        self.format = fmt


class _VDeviceParams:
    def __init__(self) -> None:
        self.scheduling_algorithm = HailoSchedulingAlgorithm.NONE  # Python default (C++ is ROUND_ROBIN)
        self.group_id = "UNIQUE"
        self.multi_process_service = False
        self.device_count = 1


class VDevice:
    """One physical Hailo-8: a second VDevice in the process fails unless it shares a group_id."""

    _open: ClassVar[list[VDevice]] = []
    created: ClassVar[list[VDevice]] = []  # test introspection: every VDevice ever created

    def __init__(self, params: _VDeviceParams | None = None, *, device_ids: Any = None) -> None:
        self.params = params if params is not None else _VDeviceParams()
        for other in VDevice._open:
            if self.params.group_id == "UNIQUE" or other.params.group_id != self.params.group_id:
                raise HailoRTException("Failed to create vdevice. status=HAILO_OUT_OF_PHYSICAL_DEVICES(74)")
        VDevice._open.append(self)
        VDevice.created.append(self)
        self.released = False
        self.infer_models: list[InferModel] = []

    @staticmethod
    def create_params() -> _VDeviceParams:
        return _VDeviceParams()

    def create_infer_model(self, hef_source: str | bytes, name: str = "") -> InferModel:
        if self.released:
            raise HailoRTException("VDevice was released")
        model = InferModel(self, HEF(hef_source))
        self.infer_models.append(model)
        return model

    def release(self) -> None:
        if not self.released:
            self.released = True
            VDevice._open.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class InferModel:
    class InferStream:
        def __init__(self, name: str, shape: tuple[int, ...], order: FormatOrder, quant: _QuantInfo) -> None:
            self.name = name
            self.shape = shape
            self._type = FormatType.AUTO
            self._order = order
            self.quant_infos = [quant]
            self.is_nms = False

        @property
        def format(self) -> _Format:
            return _Format(FormatType.UINT8 if self._type == FormatType.AUTO else self._type, self._order)

        def set_format_type(self, type_: FormatType) -> None:
            self._type = type_

        def set_format_order(self, order: FormatOrder) -> None:
            self._order = order

    def __init__(self, vdevice: VDevice, hef: HEF) -> None:
        self._vdevice = vdevice
        self.hef = hef
        d = hef._d
        self._input = InferModel.InferStream(hef.input_name, tuple(int(v) for v in d["input_shape"]),
                                             FormatOrder.NHWC, _QuantInfo(1.0, 0.0))
        self._output = InferModel.InferStream(hef.output_name, tuple(int(v) for v in d["output_shape"]),
                                              FormatOrder.NC, _QuantInfo(float(d["qp_scale"]), float(d["qp_zp"])))
        self.batch_size = 0  # HAILO_DEFAULT_BATCH_SIZE: automatic
        self.configured: list[ConfiguredInferModel] = []

    @property
    def inputs(self) -> list[InferModel.InferStream]:
        return [self._input]

    @property
    def outputs(self) -> list[InferModel.InferStream]:
        return [self._output]

    @property
    def input_names(self) -> list[str]:
        return [self._input.name]

    @property
    def output_names(self) -> list[str]:
        return [self._output.name]

    def input(self, name: str = "") -> InferModel.InferStream:
        if name not in ("", self._input.name):
            raise HailoRTException(f"Failed to get input stream {name}. status=HAILO_NOT_FOUND(61)")
        return self._input

    def output(self, name: str = "") -> InferModel.InferStream:
        if name not in ("", self._output.name):
            raise HailoRTException(f"Failed to get output stream {name}. status=HAILO_NOT_FOUND(61)")
        return self._output

    def set_batch_size(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def configure(self) -> ConfiguredInferModel:
        if self._vdevice.released:
            raise HailoRTException("VDevice was released")
        cim = ConfiguredInferModel(self)
        self.configured.append(cim)
        return cim


class _BoundStream:
    def __init__(self, stream: InferModel.InferStream, is_input: bool) -> None:
        self._stream = stream
        self._is_input = is_input
        self._buffer: np.ndarray | None = None

    def set_buffer(self, buffer: np.ndarray) -> None:
        if not buffer.flags["C_CONTIGUOUS"]:
            raise HailoRTException("Buffer must be C_CONTIGUOUS")
        dtype = np.float32 if self._stream.format.type == FormatType.FLOAT32 else np.uint8
        if buffer.dtype != dtype or buffer.nbytes != int(np.prod(self._stream.shape)) * np.dtype(dtype).itemsize:
            raise HailoRTException(f"Buffer size/type mismatch for {self._stream.name}: got {buffer.shape} "
                                   f"{buffer.dtype}, expected {self._stream.shape} {np.dtype(dtype)}. "
                                   "status=HAILO_INVALID_OPERATION(6)")
        self._buffer = buffer

    def get_buffer(self, tf_format: bool = False) -> np.ndarray:
        if self._buffer is None:
            raise HailoRTException(f"No buffer set for {self._stream.name}")
        return self._buffer


class Bindings:
    def __init__(self, model: InferModel, input_buffers: dict[str, np.ndarray] | None,
                 output_buffers: dict[str, np.ndarray] | None) -> None:
        self._model = model
        self._in = {s.name: _BoundStream(s, True) for s in model.inputs}
        self._out = {s.name: _BoundStream(s, False) for s in model.outputs}
        for name, buf in (input_buffers or {}).items():
            self._in[name].set_buffer(buf)
        for name, buf in (output_buffers or {}).items():
            self._out[name].set_buffer(buf)

    def input(self, name: str = "") -> _BoundStream:
        if not name and len(self._in) == 1:
            return next(iter(self._in.values()))
        if name not in self._in:
            raise HailoRTException(f"Input {name!r} not found. status=HAILO_NOT_FOUND(61)")
        return self._in[name]

    def output(self, name: str = "") -> _BoundStream:
        if not name and len(self._out) == 1:
            return next(iter(self._out.values()))
        if name not in self._out:
            raise HailoRTException(f"Output {name!r} not found. status=HAILO_NOT_FOUND(61)")
        return self._out[name]


class ConfiguredInferModel:
    def __init__(self, model: InferModel) -> None:
        self._model = model
        self._scheduler = model._vdevice.params.scheduling_algorithm != HailoSchedulingAlgorithm.NONE
        self._active = False
        self.shut_down = False
        self.run_sizes: list[int] = []  # test introspection: bindings per run() call

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        self.shut_down = True

    def activate(self) -> None:
        if self._scheduler:
            raise HailoRTException("Calling this function is invalid in case scheduler is enabled")
        self._active = True

    def deactivate(self) -> None:
        self._active = False

    def create_bindings(self, input_buffers: dict[str, np.ndarray] | None = None,
                        output_buffers: dict[str, np.ndarray] | None = None) -> Bindings:
        return Bindings(self._model, input_buffers, output_buffers)

    def run(self, bindings: list[Bindings], timeout: int) -> None:
        if self.shut_down or self._model._vdevice.released:
            raise HailoRTException("Infer model was shut down. status=HAILO_INVALID_OPERATION(6)")
        if not self._scheduler and not self._active:
            raise HailoRTException("Network group is not activated. status=HAILO_NETWORK_GROUP_NOT_ACTIVATED(69)")
        self.run_sizes.append(len(bindings))
        d = self._model.hef._d
        out_stream = self._model._output
        for b in bindings:
            frame = b.input().get_buffer()
            x = (frame.astype(np.float32).reshape(-1) / 255.0) - 0.5
            y = x @ d["weight"]
            if bool(d["nan_on_dark_input"]) and float(frame.mean()) < 5.0:
                y[:] = np.nan
            q = out_stream.quant_infos[0]
            quantised = np.clip(np.round(y / q.qp_scale + q.qp_zp), 0, 255)
            out = b.output().get_buffer()
            if out_stream.format.type == FormatType.FLOAT32:
                out[...] = np.where(np.isnan(y), np.nan, (quantised - q.qp_zp) * q.qp_scale).reshape(out.shape)
            else:
                out[...] = quantised.astype(out.dtype).reshape(out.shape)


# The older InferVStreams API exists in 4.23; the fake names it so imports resolve, but the backend
# uses the InferModel API only.
class ConfigureParams:
    @staticmethod
    def create_from_hef(hef: HEF, interface: HailoStreamInterface) -> dict[str, Any]:
        raise HailoRTException("fake: the InferVStreams API is not simulated")


class InputVStreamParams:
    @staticmethod
    def make(*args: Any, **kwargs: Any) -> Any:
        raise HailoRTException("fake: the InferVStreams API is not simulated")


class OutputVStreamParams(InputVStreamParams):
    pass


class InferVStreams:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise HailoRTException("fake: the InferVStreams API is not simulated")
