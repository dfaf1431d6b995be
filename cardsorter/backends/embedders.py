"""Embedding backends (ONNX Runtime on CPU, HailoRT on a Hailo-8) behind one Protocol.

Both read everything about the model from its manifest (models/<name>.yaml), verify the model
file's sha256 before loading it, and return L2-normalised rows plus an ok mask (NaN/Inf refused).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np

from cardsorter.core.errors import ModelError
from cardsorter.core.model_manifest import (
    ModelManifest,
    load_manifest,
    verified_model_bytes,
)
from cardsorter.core.preprocess import l2_normalize, preprocess_batch

BACKENDS = ("onnx", "hailo")
HAILO_RUN_TIMEOUT_MS = 1000  # one batch of a few crops takes ~1 ms on a Hailo-8; 1 s means it hung


class Embedder(Protocol):
    """Turns rectified BGR uint8 crops into L2-normalised float32 vectors (N, dimension)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def input_size_wh(self) -> tuple[int, int]: ...

    def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """One batched inference: (vectors float32 (N, D) L2-normalised, ok bool (N,)).

        Rows whose raw output held NaN/Inf are not normalised and have ok=False: the caller
        drops them (counted, reported) so that track gets no embedding from that frame."""
        ...

    def close(self) -> None: ...


class _ManifestEmbedder:
    """Shared properties and context-manager behaviour."""

    def __init__(self, manifest: ModelManifest) -> None:
        self._manifest = manifest

    @property
    def manifest(self) -> ModelManifest:
        return self._manifest

    @property
    def model_id(self) -> str:
        return self._manifest.model_id

    @property
    def dimension(self) -> int:
        return self._manifest.dimension

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return self._manifest.input_size_wh

    def close(self) -> None:
        """Release the engine; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _empty(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((0, self.dimension), np.float32), np.zeros(0, bool)

    def _check_rows(self, raw: np.ndarray, n: int) -> np.ndarray:
        rows = np.asarray(raw).reshape(n, -1) if np.asarray(raw).size == n * self.dimension else None
        if rows is None:
            raise ModelError(f"model {self.model_id}: output {self._manifest.output_name!r} has shape "
                             f"{np.asarray(raw).shape} for {n} crops; the manifest says dimension {self.dimension}")
        return rows


class OnnxEmbedder(_ManifestEmbedder):
    """ONNX Runtime, CPU execution provider, `threads` intra-op threads, one run per batch."""

    def __init__(self, manifest: ModelManifest, threads: int) -> None:
        super().__init__(manifest)
        if manifest.format != "onnx":
            raise ModelError(f"backend onnx cannot run {manifest.file} (manifest {manifest.path})")
        if threads < 1:
            raise ModelError(f"onnx backend: threads must be >= 1, got {threads}")
        if manifest.normalisation != "mean_std":
            raise ModelError(f"manifest {manifest.path}: an ONNX model needs 'normalisation: mean_std'")
        data = verified_model_bytes(manifest)
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session: Any = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelError(f"onnxruntime cannot load {manifest.file}: {err}") from err
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        if manifest.input_name not in inputs:
            raise ModelError(f"{manifest.file}: no input named {manifest.input_name!r} (has {sorted(inputs)}); "
                             f"fix 'input_name' in {manifest.path}")
        if manifest.output_name not in outputs:
            raise ModelError(f"{manifest.file}: no output named {manifest.output_name!r} (has {sorted(outputs)}); "
                             f"fix 'output_name' in {manifest.path}")
        shape = list(inputs[manifest.input_name].shape)
        expected = ([3, manifest.input_height, manifest.input_width] if manifest.layout == "nchw"
                    else [manifest.input_height, manifest.input_width, 3])
        if len(shape) != 4 or any(isinstance(s, int) and s != e for s, e in zip(shape[1:], expected, strict=True)):
            raise ModelError(f"{manifest.file}: input {manifest.input_name!r} has shape {shape}, the manifest "
                             f"{manifest.path} says (N, {', '.join(map(str, expected))})")
        fixed = shape[0] if isinstance(shape[0], int) else 0
        self._max_batch = manifest.batch_size or fixed
        if fixed and self._max_batch != fixed:
            raise ModelError(f"{manifest.file}: the batch axis is fixed at {fixed}, the manifest says "
                             f"batch_size {manifest.batch_size}")
        # Fail at start, not three callbacks later: one inference checks the output dimension.
        probe = np.zeros((1, manifest.input_height, manifest.input_width, 3), np.uint8)
        self._run(preprocess_batch([probe[0]], manifest), 1)

    def _run(self, x: np.ndarray, n: int) -> np.ndarray:
        out = self._session.run([self._manifest.output_name], {self._manifest.input_name: x})[0]
        return self._check_rows(out, n)

    def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if len(crops_bgr) == 0:
            return self._empty()
        x = preprocess_batch(crops_bgr, self._manifest)
        step = self._max_batch or len(crops_bgr)
        raw = np.concatenate([self._run(x[i:i + step], len(x[i:i + step])) for i in range(0, len(x), step)])
        return l2_normalize(raw)

    def close(self) -> None:
        self._session = None


class HailoEmbedder(_ManifestEmbedder):
    """HailoRT 4.x InferModel API: one VDevice (round-robin scheduler), uint8 HWC input, float32 output.

    The HEF runs `batch_size` frames per inference as compiled (manifest key, default 1); a larger
    list of crops is split into several runs. Use as a context manager or call close()."""

    def __init__(self, manifest: ModelManifest) -> None:
        super().__init__(manifest)
        if manifest.format != "hef":
            raise ModelError(f"backend hailo cannot run {manifest.file} (manifest {manifest.path})")
        data = verified_model_bytes(manifest)
        try:
            from hailo_platform import (  # type: ignore[import-not-found]
                FormatType,
                HailoSchedulingAlgorithm,
                VDevice,
            )
        except ImportError as err:
            raise ModelError("backend hailo needs HailoRT 4.x's Python package hailo_platform "
                             "(apt install hailo-all on Raspberry Pi OS)") from err
        stack = contextlib.ExitStack()
        self._stack: contextlib.ExitStack | None = stack
        self._configured: Any = None
        self._batch = manifest.batch_size or 1
        try:
            params = VDevice.create_params()
            # The Python default is NONE (C++ default is ROUND_ROBIN); every official example sets it.
            params.scheduling_algorithm = HailoSchedulingAlgorithm.ROUND_ROBIN
            vdevice = stack.enter_context(VDevice(params))
            model = vdevice.create_infer_model(data)
            model.set_batch_size(self._batch)
            self._check_streams(model, manifest)
            model.input(manifest.input_name).set_format_type(FormatType.UINT8)
            model.output(manifest.output_name).set_format_type(FormatType.FLOAT32)  # dequantised on host
            self._configured = stack.enter_context(model.configure())
            out_shape = tuple(model.output(manifest.output_name).shape)
            self._bindings = [
                self._configured.create_bindings(
                    output_buffers={manifest.output_name: np.empty(out_shape, np.float32)})
                for _ in range(self._batch)
            ]
        except ModelError:
            stack.close()
            raise
        except Exception as err:
            stack.close()
            raise ModelError(f"HailoRT cannot load {manifest.file}: {err}") from err

    def _check_streams(self, model: Any, manifest: ModelManifest) -> None:
        if manifest.input_name not in model.input_names:
            raise ModelError(f"{manifest.file}: no input named {manifest.input_name!r} "
                             f"(has {list(model.input_names)}); fix 'input_name' in {manifest.path}")
        if manifest.output_name not in model.output_names:
            raise ModelError(f"{manifest.file}: no output named {manifest.output_name!r} "
                             f"(has {list(model.output_names)}); fix 'output_name' in {manifest.path}")
        shape = tuple(model.input(manifest.input_name).shape)
        if shape != (manifest.input_height, manifest.input_width, 3):
            raise ModelError(f"{manifest.file}: input shape {shape} (H, W, C) differs from the manifest "
                             f"{manifest.path} ({manifest.input_height}, {manifest.input_width}, 3)")
        size = int(np.prod(model.output(manifest.output_name).shape))
        if size != manifest.dimension:
            raise ModelError(f"{manifest.file}: output {manifest.output_name!r} has {size} values, "
                             f"the manifest {manifest.path} says dimension {manifest.dimension}")

    def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if len(crops_bgr) == 0:
            return self._empty()
        if self._stack is None:
            raise ModelError(f"hailo embedder for {self.model_id} is closed")
        frames = preprocess_batch(crops_bgr, self._manifest)  # (N, H, W, 3) uint8, C-contiguous
        m = self._manifest
        raw = np.empty((len(frames), m.dimension), np.float32)
        for start in range(0, len(frames), self._batch):
            chunk = frames[start:start + self._batch]
            bindings = self._bindings[:len(chunk)]
            for binding, frame in zip(bindings, chunk, strict=True):
                binding.input(m.input_name).set_buffer(np.ascontiguousarray(frame))
            try:
                self._configured.run(bindings, HAILO_RUN_TIMEOUT_MS)
            except Exception as err:
                raise ModelError(f"HailoRT inference failed for {self.model_id}: {err}") from err
            for j, binding in enumerate(bindings):
                raw[start + j] = np.asarray(binding.output(m.output_name).get_buffer(), np.float32).reshape(-1)
        return l2_normalize(raw)

    def close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()


def open_embedder(backend: str, manifest_path: str | Path, threads: int) -> Embedder:
    """The embedder the node asks for: 'onnx' (threads = ONNX Runtime intra-op threads) or 'hailo'."""
    if backend not in BACKENDS:
        raise ModelError(f"unknown embedder backend {backend!r} (known: {', '.join(BACKENDS)})")
    manifest = load_manifest(manifest_path)
    if backend == "onnx":
        return OnnxEmbedder(manifest, threads)
    return HailoEmbedder(manifest)
