"""`cardsorter version` and `cardsorter run` (the whole graph in one process)."""

from __future__ import annotations

import argparse
import platform

from cardsorter.cli import extras
from cardsorter.cli.extras import guarded, ros_parser
from cardsorter.config import package_version


def _version(args: argparse.Namespace) -> int:
    missing = extras.ros_missing()
    if missing is None:
        from rclpy.utilities import get_rmw_implementation_identifier

        ros = f"ROS 2 Jazzy, rmw {get_rmw_implementation_identifier()}"
    else:
        ros = f"without ROS 2: {missing}"
    print(f"cardsorter {package_version()} ({ros}, Python {platform.python_version()}, {platform.machine()})")
    return 0


def _run(args: argparse.Namespace) -> int:
    from cardsorter.ros.graph import run_from_args

    return run_from_args(args)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=_version)
    run = ros_parser(sub, "run", "run every node of the graph in this process until Ctrl-C")
    if run is not None:
        from cardsorter.ros.graph import add_run_arguments

        add_run_arguments(run)
        run.set_defaults(func=guarded("run", _run))
