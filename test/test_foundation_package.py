"""The ROS package: colcon's install tree, executables, launch file and rviz config agree with the code."""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import yaml

from cardsorter.ros.node_specs import ALL_NODE_NAMES

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
    code = ("import cardsorter.msg, cardsorter.core.types, cardsorter.ros.node_specs, sys;"
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
    assert "cardsorter.ros.node_specs" in imports, "the launch file reads the one node list"


def test_rviz_config_shows_the_overlay_topics_relative_to_its_namespace() -> None:
    cfg = yaml.safe_load((ROOT / "config" / "cardsorter.rviz").read_text())
    topics = {d["Topic"]["Value"] for d in cfg["Visualization Manager"]["Displays"] if "Topic" in d}
    assert topics == {"debug/image", "debug/markers"}   # relative: rviz2 in namespace:=station2 shows that sorter


def test_package_xml_declares_the_runtime_dependencies() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    deps = {e.text for e in root if e.tag in ("depend", "exec_depend", "build_depend", "buildtool_depend")}
    for dep in ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
                "builtin_interfaces", "rosidl_default_generators", "rosidl_default_runtime", "launch_ros",
                "lifecycle_msgs"):
        assert dep in deps, dep


# What each third-party import of cardsorter/ is installed by: its rosdep key (ros/rosdistro
# rosdep/{base,python}.yaml), or None with where the README says to get it.
ROSDEP_KEY = {
    "rclpy": "rclpy", "std_msgs": "std_msgs", "sensor_msgs": "sensor_msgs", "geometry_msgs": "geometry_msgs",
    "visualization_msgs": "visualization_msgs", "diagnostic_msgs": "diagnostic_msgs",
    "builtin_interfaces": "builtin_interfaces", "rcl_interfaces": "rcl_interfaces", "lifecycle_msgs": "lifecycle_msgs",
    "ament_index_python": "ament_index_python", "launch": "launch", "launch_ros": "launch_ros",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "yaml": "python3-yaml", "matplotlib": "python3-matplotlib",
    "aiohttp": "python3-aiohttp",
    "onnxruntime": "python3-onnxruntime-pip", "rosbags": "python3-rosbags-pip", "gpiozero": "python3-gpiozero",
    "serial": "python3-serial", "adafruit_servokit": "python3-adafruit-servokit-pip",
    "usearch": None,          # no rosdep key: pip install usearch (README)
    "psycopg": None,          # no rosdep key for psycopg 3 (only psycopg2): pip, for a postgresql:// inventory (README)
    "picamera2": None,        # Raspberry Pi OS apt: python3-picamera2 (README)
    "hailo_platform": None,   # Raspberry Pi OS apt: hailo-all (HailoRT, README)
    "rapidocr_onnxruntime": None,   # optional printing reader: pip install --no-deps (docs/PRINTINGS.md)
    "vision_msgs": None,      # optional: the overlay publishes vision_msgs only where it is installed
}


def _third_party_imports() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "cardsorter").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    first_party = ("cardsorter", "training", "__future__")   # training/: this repository, imported by `train`
    return {m for m in found if m not in sys.stdlib_module_names and m not in first_party}


def test_package_xml_declares_every_runtime_import_by_its_rosdep_key_and_nothing_unused() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    declared = {e.text for e in root if e.tag in ("depend", "exec_depend")}
    imports = _third_party_imports()
    unmapped = imports - set(ROSDEP_KEY)
    assert not unmapped, f"imports without a known rosdep key or install note: {sorted(unmapped)}"
    missing = {ROSDEP_KEY[m] for m in imports if ROSDEP_KEY[m]} - declared
    assert not missing, f"package.xml does not declare {sorted(missing)}"
    python_keys = {d for d in declared if d and d.startswith("python3-")}
    unused = python_keys - {ROSDEP_KEY[m] for m in imports if ROSDEP_KEY[m]}
    assert not unused, f"package.xml declares {sorted(unused)}, which cardsorter never imports"
    assert "cv_bridge" not in declared, "cv_bridge is never imported (conversions.py converts images itself)"
    readme = (ROOT / "README.md").read_text()
    assert "pip install usearch==" in readme, "the README says how to install usearch (no rosdep key)"


def test_installed_launch_file_and_config_are_the_sources() -> None:
    """ros2 launch reads share/cardsorter/{launch,config}: the bootstrap rebuilds install/ when they change."""
    share = INSTALL / "share" / "cardsorter"
    for folder in ("launch", "config"):
        for src in sorted((ROOT / folder).rglob("*")):
            if src.is_file():
                installed = share / src.relative_to(ROOT)
                assert installed.is_file() and installed.read_bytes() == src.read_bytes(), \
                    f"{installed} is stale: run scripts/bootstrap.sh"
