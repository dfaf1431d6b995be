"""Commands that need ROS 2 (or the training extra): when it is missing they say what to install, not a traceback."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

NEEDS_ROS = "needs ROS 2: use `make demo` or a ROS install"
NEEDS_TRAIN = "needs the training extra: pip install 'cardsorter[train]' (or scripts/bootstrap.sh --train)"
MISSING_EXIT = 2

# Top-level modules that only a ROS 2 install (or the colcon build of this package) provides.
ROS_MODULES = ("rclpy", "rcl_interfaces", "rosidl_runtime_py", "rpyutils", "ament_index_python", "builtin_interfaces",
               "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs", "launch",
               "launch_ros", "cardsorter.msg", "cardsorter.srv")
TRAIN_MODULES = ("torch", "onnx", "training")


def _spec_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a parent package that cannot be imported
        return True


def ros_missing() -> str | None:
    """Why the ROS commands cannot run here (None when rclpy and the generated cardsorter.msg are found).
    Only looks the modules up (no import), so the offline commands start as fast as before."""
    if _spec_missing("rclpy"):
        return "rclpy is not installed"
    if _spec_missing("cardsorter.msg"):
        return "rclpy is installed but the generated cardsorter.msg is not: build the package with colcon"
    return None


def train_missing() -> str | None:
    """Why `train` cannot run here (None when torch, onnx and the training package are found)."""
    absent = [m for m in TRAIN_MODULES if _spec_missing(m)]
    return f"{', '.join(absent)} not installed" if absent else None


def _is_missing(err: ModuleNotFoundError, modules: tuple[str, ...]) -> bool:
    name = err.name or ""
    return any(name == m or name.startswith(m + ".") for m in modules)


def explain(command: str, need: str, reason: str) -> int:
    print(f"cardsorter {command}: {need} ({reason})", file=sys.stderr)
    return MISSING_EXIT


def guarded(command: str, func: Callable[[argparse.Namespace], int],
            modules: tuple[str, ...] = ROS_MODULES, need: str = NEEDS_ROS) -> Callable[[argparse.Namespace], int]:
    """``func``, except that a missing ROS (or training) module it imports ends with ``need``, not a traceback."""
    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ModuleNotFoundError as err:
            if not _is_missing(err, modules):
                raise
            return explain(command, need, f"No module named {err.name!r}")
    return run


def add_unavailable(sub: Any, command: str, help_text: str, need: str, reason: str,
                    full_name: str | None = None) -> argparse.ArgumentParser:
    """A subcommand that takes any arguments and only explains what it needs (argparse's help included)."""
    p: argparse.ArgumentParser = sub.add_parser(command, help=f"{help_text} [{need.split(':')[0]}]",
                                                description=f"{help_text}. This command {need} ({reason}).")
    p.set_defaults(func=lambda _args: explain(full_name or command, need, reason), accepts_any_arguments=True)
    return p


def ros_parser(sub: Any, command: str, help_text: str) -> argparse.ArgumentParser | None:
    """The subparser of a command that needs ROS, or None after adding one that explains it is missing."""
    reason = ros_missing()
    if reason is not None:
        add_unavailable(sub, command, help_text, NEEDS_ROS, reason)
        return None
    parser: argparse.ArgumentParser = sub.add_parser(command, help=help_text)
    return parser
