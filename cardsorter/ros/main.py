"""The one main() helper every node executable uses."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from cardsorter.core.errors import CardsorterError


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """rclpy.init, build the node (a CardsorterError at start exits 2 with its message), spin, shut down."""
    rclpy.init(args=args if args is not None else sys.argv)
    node: Node | None = None
    executor = SingleThreadedExecutor()
    try:
        try:
            node = factory()
        except CardsorterError as err:
            print(f"[cardsorter] cannot start: {err}", file=sys.stderr)
            sys.exit(2)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
