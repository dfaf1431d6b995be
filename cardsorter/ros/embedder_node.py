"""EmbedderNode: every crop of a frame in one batched inference → L2-normalised embeddings."""

from __future__ import annotations

from typing import Any

import numpy as np

from cardsorter.backends.embedders import open_embedder
from cardsorter.config import resolve_path
from cardsorter.core.errors import ImageError
from cardsorter.core.types import CardEmbedding
from cardsorter.msg import CardCropArray, CardEmbeddingArray
from cardsorter.ros import conversions, qos
from cardsorter.ros.diagnostics import StageMonitor
from cardsorter.ros.lifecycle import ManagedNode
from cardsorter.ros.node_main import run_node
from cardsorter.ros.params import declare_settings
from cardsorter.ros.validation import InputGuard
from cardsorter.settings import EmbedderSettings


class EmbedderNode(ManagedNode):
    """Managed: configure loads the model (ONNX Runtime session / Hailo device), activate subscribes to crops."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("embedder", **kwargs)
        self._cfg = declare_settings(self, EmbedderSettings)
        self._embedder: Any = None
        self._crops_sub: Any = None
        self._monitor = StageMonitor(self, f"embed ({self._cfg.backend})", hardware_id=f"embedder/{self._cfg.backend}")
        self._inputs = InputGuard(self, self._monitor, self._cfg.input)
        self._pub = self.create_publisher(CardEmbeddingArray, "embeddings", qos.PIPELINE)

    def open_hardware(self) -> None:
        self._embedder = open_embedder(self._cfg.backend, resolve_path(self._cfg.model_manifest), self._cfg.threads)
        self._monitor.values["model_id"] = self._embedder.model_id
        self.get_logger().info(f"embedding with {self._cfg.backend}: model {self._embedder.model_id}, "
                               f"{self._embedder.dimension}-d, input {self._embedder.input_size_wh}")

    def start_work(self) -> None:
        if self._crops_sub is None:
            self._crops_sub = self.create_subscription(CardCropArray, "crops", self._on_crops, qos.PIPELINE)

    def stop_work(self) -> None:
        if self._crops_sub is not None:
            self.destroy_subscription(self._crops_sub)
            self._crops_sub = None

    def release_hardware(self) -> None:
        if self._embedder is not None:
            self._embedder.close()
            self._embedder = None

    def _on_crops(self, msg: CardCropArray) -> None:
        embedder = self._embedder
        if embedder is None:   # a message still in flight as the node was cleaned up
            return
        try:
            crops = conversions.crops_from_msg(msg)
        except (ImageError, ValueError) as err:
            self._inputs.drop("crops", str(err), max(1, len(msg.crops)))
            return
        if not crops:
            vectors, ok = np.zeros((0, embedder.dimension), np.float32), np.zeros(0, bool)
        else:
            with self._monitor.measure():
                vectors, ok = embedder.embed([c.image_bgr for c in crops])
        refused = [c.track_id for c, good in zip(crops, ok) if not good]
        if refused:
            self._monitor.count("non_finite_outputs", len(refused))
            self.get_logger().warning(f"non-finite embeddings for tracks {refused}: no embedding this frame",
                                      throttle_duration_sec=5.0)
        embs = [CardEmbedding(c.track_id, v) for c, v, good in zip(crops, vectors, ok) if good]
        self._monitor.count("crops", len(crops))
        # Published even when empty: every crops message gets an answer (replay steps on it).
        self._pub.publish(conversions.embeddings_to_msg(embs, msg.header, embedder.model_id,
                                                        embedder.dimension))


def main() -> None:
    run_node(EmbedderNode)
