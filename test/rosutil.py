"""Helpers for node tests: a private rclpy Context, one spin_until, and a message collector."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from cardsorter.config import REPO_ROOT
from cardsorter.ros.graph import node_overrides
from cardsorter.ros.lifecycle import ManagedNode, activate

PARAMS_FILE = REPO_ROOT / "config" / "sorter.yaml"


@contextmanager
def ros_context() -> Iterator[tuple[Context, MultiThreadedExecutor]]:
    context = Context()
    rclpy.init(context=context, args=[])
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    try:
        yield context, executor
    finally:
        nodes = list(executor.get_nodes())
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        rclpy.try_shutdown(context=context)


@contextmanager
def spun_alone(node: Node) -> Iterator[None]:
    """Spin ``node`` on its own single-threaded executor in a thread, as the graph and ``ros2 run`` spin
    the web node: its timer then creates and destroys subscriptions in the thread that waits on them (in a
    shared multi-threaded executor that races another thread's wait set: rclpy's InvalidHandle). The node
    is closed and destroyed at the end."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set() and node.context.ok():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, name=f"test-{node.get_name()}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10.0)
        executor.remove_node(node)
        executor.shutdown(timeout_sec=2.0)
        close = getattr(node, "close", None)
        if callable(close):
            close()
        node.destroy_node()


def spin_until(executor: MultiThreadedExecutor, done: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """Spin until done() is true or the timeout passes (a generous ceiling, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if done():
            return True
        executor.spin_once(timeout_sec=0.02)
    return done()


def overrides(node: str, **changes: Any) -> list[Parameter]:
    """The node's parameters from config/sorter.yaml with some changed."""
    return node_overrides(PARAMS_FILE, node, {node: changes})


M = TypeVar("M", bound=ManagedNode)


def started(node: M) -> M:
    """A managed node (camera, embedder, sorter) configured and activated, as the launch file and runner do."""
    activate(node)
    return node


class Collector(Node):
    """Subscribes to topics and keeps every message received, per topic."""

    def __init__(self, context: Context, topics: dict[str, tuple[type, QoSProfile]]) -> None:
        super().__init__("test_collector", context=context)
        self.received: dict[str, list[Any]] = {t: [] for t in topics}
        for topic, (msg_type, qos) in topics.items():
            self.create_subscription(msg_type, topic, lambda m, t=topic: self.received[t].append(m), qos)

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile) -> Any:
        return self.create_publisher(msg_type, topic, qos)


def make_world(root: pathlib.Path, cards: int, seed: int, unknown: int) -> dict[str, pathlib.Path]:
    """A generated catalogue and its reference database (default model), as the demo makes them."""
    from cardsorter.database_setup import build_database_from_settings
    from cardsorter.sim.catalog import generate_catalog

    generate_catalog(root / "catalog", cards=cards, seed=seed, unknown=unknown)
    build_database_from_settings(root / "catalog" / "images", root / "db", metadata=root / "catalog" / "metadata.json")
    return {"catalog": root / "catalog", "db": root / "db", "root": root}
