"""The ROS package: colcon's install tree, executables, launch file and rviz config agree with the code."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import yaml

from cardsorter.ros.graph import ALL_NODE_NAMES

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install" / "cardsorter"


def test_colcon_installed_an_executable_per_node() -> None:
    lib = INSTALL / "lib" / "cardsorter"
    for name in (*ALL_NODE_NAMES, "all_nodes"):
        exe = lib / name
        assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing or not executable"


def test_installed_package_imports_messages_next_to_the_core() -> None:
    site = next((INSTALL / "lib").glob("python3.*/site-packages"))
    env = {**os.environ, "PYTHONPATH": str(site) + os.pathsep + os.environ.get("PYTHONPATH", "").replace(str(ROOT), "")}
    code = ("import cardsorter.msg, cardsorter.core.types, cardsorter.ros.graph, sys;"
            "from cardsorter.msg import CardDetectionArray, SortEvent;"
            "from cardsorter.srv import EnrolCard;"
            "assert 'install' in cardsorter.core.types.__file__, cardsorter.core.types.__file__;"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_launch_file_declares_the_documented_arguments_and_reads_the_node_list() -> None:
    tree = ast.parse((ROOT / "launch" / "sorter.launch.py").read_text())
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"}
    assert declared == {"params_file", "source", "backend", "database", "namespace", "single_process", "rviz",
                        "web"}
    imports = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "cardsorter.ros.graph" in imports, "the launch file reads the one node list"


def test_rviz_config_shows_the_overlay_topics_relative_to_its_namespace() -> None:
    cfg = yaml.safe_load((ROOT / "config" / "cardsorter.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics == {"debug/image", "debug/markers"}   # relative: rviz2 in namespace:=station2 shows that sorter


def test_package_xml_declares_the_runtime_dependencies() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    deps = {e.text for e in root if e.tag in ("depend", "exec_depend", "build_depend", "buildtool_depend")}
    for dep in ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
                "builtin_interfaces", "rosidl_default_generators", "rosidl_default_runtime", "cv_bridge",
                "launch_ros", "lifecycle_msgs"):
        assert dep in deps, dep


def test_installed_launch_file_and_config_are_the_sources() -> None:
    """ros2 launch reads share/cardsorter/{launch,config}: the bootstrap rebuilds install/ when they change."""
    share = INSTALL / "share" / "cardsorter"
    for folder in ("launch", "config"):
        for src in sorted((ROOT / folder).rglob("*")):
            if src.is_file():
                installed = share / src.relative_to(ROOT)
                assert installed.is_file() and installed.read_bytes() == src.read_bytes(), \
                    f"{installed} is stale: run scripts/bootstrap.sh"
