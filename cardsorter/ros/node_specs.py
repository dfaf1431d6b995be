"""The node graph in one place: the launch file and the in-process runner both read this list."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.node import Node


@dataclass(frozen=True)
class NodeSpec:
    name: str          # node name = section of the parameters file = executable in lib/cardsorter
    module: str
    cls: str
    summary: str
    own_executor: bool = False
    """In the one-process runner, spun by its own executor in its own thread: its entities and wakeups never
    lengthen the graph executor's wait (that wait is rebuilt over every node's entities on each wakeup)."""

    def load(self) -> Callable[..., Node]:
        """The node class: called with rclpy's keyword arguments (context, parameter_overrides)."""
        node_cls: Callable[..., Node] = getattr(importlib.import_module(self.module), self.cls)
        return node_cls


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("camera", "cardsorter.ros.camera_node", "CameraNode", "frames + detections (imx500 | video | synthetic)"),
    NodeSpec("frame_selector", "cardsorter.ros.frame_selector_node", "FrameSelectorNode",
             "tracking, sharpness gate, best frame, perspective warp → crops"),
    NodeSpec("embedder", "cardsorter.ros.embedder_node", "EmbedderNode", "crops → L2-normalised embeddings (onnx | hailo)"),
    NodeSpec("matcher", "cardsorter.ros.matcher_node", "MatcherNode", "embeddings → top-k cards with decision bands"),
    NodeSpec("printing_reader", "cardsorter.ros.printing_reader_node", "PrintingReaderNode",
             "closeups of cards whose art has several printings → the collector number read"),
    NodeSpec("smoother", "cardsorter.ros.smoother_node", "SmootherNode", "matches over views → stable identities"),
    NodeSpec("sorter", "cardsorter.ros.sorter_node", "SorterNode", "identities + track ends → bins, actuator, inventory"),
    NodeSpec("overlay", "cardsorter.ros.overlay_node", "OverlayNode", "annotated image + rviz2 markers"),
)

NODE_NAMES = tuple(spec.name for spec in NODES)

OPTIONAL_NODES: tuple[NodeSpec, ...] = (
    NodeSpec("web", "cardsorter.ros.web_node", "WebNode",
             "the operator's browser view: live sorting, review queue, inventory (web:=true / --web)",
             own_executor=True),
)
"""Started only when asked for (launch argument, runner flag); the graph sorts without them."""

ALL_NODE_NAMES = NODE_NAMES + tuple(spec.name for spec in OPTIONAL_NODES)


def spec(name: str) -> NodeSpec:
    for s in NODES + OPTIONAL_NODES:
        if s.name == name:
            return s
    raise KeyError(f"no node named '{name}' (known: {', '.join(ALL_NODE_NAMES)})")
