"""Embedding backends (ONNX Runtime, HailoRT) behind one Protocol. Implementation: issue 4."""

from __future__ import annotations

from typing import Protocol

import numpy as np


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
