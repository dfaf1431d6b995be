"""core/ must import nothing from ROS, message packages, hardware libraries or the layers above it; imports never
run back up (only cli/ imports cli/)."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "cardsorter"
CORE = PACKAGE / "core"
CLI = PACKAGE / "cli"
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
            names.update(f"{node.module}.{alias.name}" for alias in node.names)   # from cardsorter import cli
    return names


def imports_of(path: pathlib.Path, package: str) -> list[str]:
    """The modules of ``package`` (itself or below) that ``path`` imports."""
    return sorted(m for m in imported_modules(path) if m == package or m.startswith(package + "."))


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
UPWARD_FROM_CORE = ("cardsorter.cli", "cardsorter.bench")


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.name)
def test_core_module_imports_no_command_line_or_benchmark(path: pathlib.Path) -> None:
    bad = [m for package in UPWARD_FROM_CORE for m in imports_of(path, package)]
    assert bad == [], f"{path.name} imports {bad}"


def outside_cli() -> list[pathlib.Path]:
    """Every module of the package outside cli/, and the training scripts (they ship in the wheel too)."""
    training = PACKAGE.parent / "training"
    return sorted([p for p in PACKAGE.rglob("*.py") if CLI not in p.parents] + list(training.rglob("*.py")))


def test_only_the_command_line_imports_the_command_line() -> None:
    assert len(outside_cli()) > len(core_files())
    bad = {str(p.relative_to(PACKAGE.parent)): imports_of(p, "cardsorter.cli") for p in outside_cli()}
    assert {name: mods for name, mods in bad.items() if mods} == {}


def test_the_checker_catches_an_import_of_the_command_line(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from cardsorter import cli\nfrom cardsorter.cli.demo import run_demo\nimport cardsorter.client\n")
    found = imports_of(probe, "cardsorter.cli")
    assert "cardsorter.cli" in found and "cardsorter.cli.demo" in found
    assert "cardsorter.client" not in found
