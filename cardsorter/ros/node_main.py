"""The one main() helper every node executable uses."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from cardsorter.core.errors import CardsorterError
from cardsorter.ros.lifecycle import ManagedNode, activate

# Command-line flag of a managed node's executable: leave the lifecycle transitions to a manager (the
# launch file); without it, `ros2 run cardsorter camera` configures and activates the node itself.
MANAGED_FLAG = "--managed"


def run_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """rclpy.init, build the node (a CardsorterError at start exits 2 with its message), spin, shut down."""
    argv = args if args is not None else sys.argv
    rclpy.init(args=argv)
    node: Node | None = None
    executor = SingleThreadedExecutor()
    try:
        try:
            node = factory()
            if isinstance(node, ManagedNode) and MANAGED_FLAG not in remove_ros_args(argv)[1:]:
                activate(node)
        except CardsorterError as err:
            print(f"[cardsorter] cannot start: {err}", file=sys.stderr)
            sys.exit(2)
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # shutting down: a second Ctrl-C must not cut it short
        if node is not None:
            close = getattr(node, "close", None)
            if callable(close):
                close()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown()
