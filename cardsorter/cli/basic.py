"""`cardsorter version` and `cardsorter run` (the whole graph in one process)."""

from __future__ import annotations

import argparse
import platform
import xml.etree.ElementTree as ET

from cardsorter.config import REPO_ROOT


def package_version() -> str:
    root = ET.parse(REPO_ROOT / "package.xml").getroot()
    return root.findtext("version") or "unknown"


def _version(args: argparse.Namespace) -> int:
    import rclpy  # noqa: F401 - proves the ROS environment is importable
    from rclpy.utilities import get_rmw_implementation_identifier

    print(f"cardsorter {package_version()} (ROS 2 Jazzy, rmw {get_rmw_implementation_identifier()}, "
          f"Python {platform.python_version()}, {platform.machine()})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from cardsorter.ros.runner import run_from_args

    return run_from_args(args)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=_version)
    p = sub.add_parser("run", help="run every node of the graph in this process until Ctrl-C")
    from cardsorter.ros.runner import add_run_arguments

    add_run_arguments(p)
    p.set_defaults(func=_run)
