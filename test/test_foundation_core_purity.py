"""core/ must import nothing from ROS, message packages, hardware libraries or the layers above it."""

from __future__ import annotations

import ast
import pathlib

import pytest

CORE = pathlib.Path(__file__).resolve().parent.parent / "cardsorter" / "core"
FORBIDDEN_PREFIXES = ("rclpy", "rcl_interfaces", "cardsorter.msg", "cardsorter.srv", "cardsorter.ros",
                      "cardsorter.backends", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs",
                      "diagnostic_msgs", "builtin_interfaces", "picamera2", "libcamera", "hailo_platform",
                      "adafruit_servokit", "gpiozero", "serial", "usearch", "onnxruntime", "torch", "rosbags",
                      # the layers above core/: install paths and YAML, the CLI, benchmarks, the settings tree
                      "cardsorter.config", "cardsorter.cli", "cardsorter.bench", "cardsorter.settings")


def imported_modules(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_files() -> list[pathlib.Path]:
    return sorted(CORE.glob("*.py"))


def test_core_has_modules() -> None:
    assert len(core_files()) >= 3


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_module_imports_no_ros_or_hardware(path: pathlib.Path) -> None:
    bad = sorted(m for m in imported_modules(path) if m.startswith(FORBIDDEN_PREFIXES))
    assert bad == [], f"{path.name} imports {bad}"


def test_the_checker_catches_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import numpy\nfrom rclpy.node import Node\n")
    assert "rclpy.node" in imported_modules(probe)


def test_the_checker_catches_an_import_from_a_layer_above(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from cardsorter.config import resolve_path\nimport cardsorter.settings\n")
    assert {"cardsorter.config", "cardsorter.settings"} <= {m for m in imported_modules(probe)
                                                           if m.startswith(FORBIDDEN_PREFIXES)}
