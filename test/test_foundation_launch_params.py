"""The launch file's parameter files and their order, fed to rclpy: each node ends up with the launch arguments."""

from __future__ import annotations

import ast
import pathlib
from collections.abc import Sequence
from typing import Any

import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node

from cardsorter.config import REPO_ROOT, default_params_file, load_params_file
from cardsorter.core.errors import ConfigError
from cardsorter.ros import launch_params as lp
from cardsorter.ros.graph import graph_ros_arguments
from cardsorter.ros.node_specs import NODE_NAMES

PARAMS_FILE = REPO_ROOT / "config" / "sorter.yaml"
# What sorter.launch.py passes by default (its DeclareLaunchArgument defaults) and a user's choice.
RCLPY_OWN = {"use_sim_time", "start_type_description_service"}   # every rclpy node declares these
ROBOT_DEFAULTS = {"source": "imx500", "backend": "hailo", "database": "/home/pi/cardsorter/db"}


def node_values(args: list[str], name: str) -> tuple[str, dict[str, Any]]:
    """Start a node named ``name`` with the rcl arguments ``args`` (as its process would) and return its
    fully-qualified name and every parameter it was given."""
    context = Context()
    rclpy.init(context=context, args=["node", *args, "-r", f"__node:={name}"])
    try:
        node = Node("placeholder", context=context, automatically_declare_parameters_from_overrides=True)
        try:
            values = {k: (list(p.value) if isinstance(p.value, Sequence) and not isinstance(p.value, str) else p.value)
                      for k, p in node.get_parameters_by_prefix("").items() if k not in RCLPY_OWN}
            return node.get_fully_qualified_name(), values
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def launch_args(tmp_path: pathlib.Path, namespace: str, values: dict[str, str],
                params_file: pathlib.Path = PARAMS_FILE) -> list[str]:
    overrides = lp.overrides_from_launch(values)
    override_file = lp.write_override_file(params_file, namespace, NODE_NAMES, overrides, directory=str(tmp_path))
    return lp.node_ros_arguments(params_file, override_file, namespace)


@pytest.mark.parametrize("namespace", ["", "station2", "/shop/station2"])
def test_each_process_gets_the_launch_arguments_over_the_params_file(tmp_path: pathlib.Path, namespace: str) -> None:
    args = launch_args(tmp_path, namespace, ROBOT_DEFAULTS)
    expected_ns = lp.normalize_namespace(namespace)
    file_values = load_params_file(PARAMS_FILE)
    for name in NODE_NAMES:
        fqn, values = node_values(args, name)
        assert fqn == f"{expected_ns}/{name}"
        # Every value of the file's block reaches the node under the namespace (no "missing parameter")...
        expected = dict(file_values[name])
        # ...except what the launch arguments set.
        expected.update(lp.overrides_from_launch(ROBOT_DEFAULTS).get(name, {}))
        assert values == expected, name
    assert node_values(args, "camera")[1]["source"] == "imx500"
    assert node_values(args, "embedder")[1]["backend"] == "hailo"
    assert node_values(args, "matcher")[1]["database"] == "/home/pi/cardsorter/db"


def test_an_empty_launch_argument_keeps_the_params_file_value(tmp_path: pathlib.Path) -> None:
    args = launch_args(tmp_path, "", {"source": "", "backend": "onnx", "database": ""})
    assert node_values(args, "camera")[1]["source"] == "synthetic"   # config/sorter.yaml's value
    assert node_values(args, "embedder")[1]["backend"] == "onnx"
    assert node_values(args, "matcher")[1]["database"] == "var/demo/db"


def test_overrides_under_the_wildcard_key_lose_as_launch_ros_dicts_did(tmp_path: pathlib.Path) -> None:
    """The bug this layout fixes, reproduced: launch_ros writes Node(parameters=[{...}]) under `/**`, a key the
    params file opens with, so rcl applies it first and the node block wins."""
    wildcard = tmp_path / "launch_params_dict.yaml"
    wildcard.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"source": "imx500"}}}))
    _, values = node_values(["--ros-args", "--params-file", str(PARAMS_FILE), "--params-file", str(wildcard)], "camera")
    assert values["source"] == "synthetic"


def test_a_params_file_keyed_by_the_full_name_still_loses_to_the_launch_argument(tmp_path: pathlib.Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"frame_id": "cam"}},
        "/station2/camera": {"ros__parameters": {"source": "video", "fps": 15.0}},
    }))
    doc = lp.override_document(user, "station2", NODE_NAMES, lp.overrides_from_launch({"source": "synthetic"}))
    assert list(doc) == ["/**/station2/camera"]   # not the key the user's file already opened
    args = launch_args(tmp_path, "station2", {"source": "synthetic"}, params_file=user)
    _, values = node_values(args, "camera")
    assert (values["source"], values["fps"], values["frame_id"]) == ("synthetic", 15.0, "cam")


def test_the_params_file_works_under_a_namespace_remap_for_every_node() -> None:
    """`ros2 run cardsorter smoother --ros-args --params-file config/sorter.yaml -r __ns:=/station2`."""
    from cardsorter.ros.smoother_node import SmootherNode

    context = Context()
    rclpy.init(context=context, args=["smoother", "--ros-args", "--params-file", str(PARAMS_FILE),
                                      "-r", "__ns:=/station2"])
    try:
        node = SmootherNode(context=context)   # declares confirm_views & co. from the file: no ConfigError
        assert node.get_fully_qualified_name() == "/station2/smoother"
        assert node.get_parameter("confirm_views").value == load_params_file(PARAMS_FILE)["smoother"]["confirm_views"]
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_single_process_graph_gets_the_same_values_from_the_launch_arguments(tmp_path: pathlib.Path) -> None:
    """all_nodes under launch: `--ros-args -r __ns:=… --params-file FILE --params-file OVERRIDES`; the runner
    adds no default file in front (the launch's own files decide)."""
    args = launch_args(tmp_path, "station2", ROBOT_DEFAULTS)
    graph_args = graph_ros_arguments(None, "", args)
    assert graph_args.count("--params-file") == 2
    for name, param, value in (("camera", "source", "imx500"), ("embedder", "backend", "hailo"),
                               ("matcher", "database", "/home/pi/cardsorter/db")):
        fqn, values = node_values(graph_args, name)
        assert fqn == f"/station2/{name}" and values[param] == value
    # Without launch arguments the runner reads the default file (cardsorter run), then the namespace.
    assert graph_ros_arguments(None, "/station2") == ["--ros-args", "--params-file", str(default_params_file()),
                                                      "-r", "__ns:=/station2"]


def test_camera_and_embedder_take_the_launch_values_without_touching_hardware(tmp_path: pathlib.Path) -> None:
    """Managed nodes only declare parameters when built; imx500 / hailo are opened at configure."""
    from cardsorter.ros.camera_node import CameraNode
    from cardsorter.ros.embedder_node import EmbedderNode

    args = launch_args(tmp_path, "station2", ROBOT_DEFAULTS)
    context = Context()
    rclpy.init(context=context, args=["all_nodes", *args])
    try:
        camera, embedder = CameraNode(context=context), EmbedderNode(context=context)
        assert (camera._cfg.source, embedder._cfg.backend) == ("imx500", "hailo")
        assert camera.state_label == embedder.state_label == "unconfigured"
        camera.destroy_node()
        embedder.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_bad_namespaces_and_unknown_launch_overrides_are_named() -> None:
    assert lp.normalize_namespace("/") == lp.normalize_namespace("") == ""
    assert lp.normalize_namespace("station2/") == "/station2"
    with pytest.raises(ConfigError, match="'2nd'"):
        lp.normalize_namespace("shop/2nd")
    with pytest.raises(ConfigError, match="colour"):
        lp.overrides_from_launch({"colour": "red"})


def test_the_launch_file_declares_every_argument_it_maps() -> None:
    tree = ast.parse((REPO_ROOT / "launch" / "sorter.launch.py").read_text(encoding="utf-8"))
    declared = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
                and node.args and isinstance(node.args[0], ast.Constant)}
    assert set(lp.LAUNCH_ARGUMENTS) | {"namespace", "params_file", "single_process", "rviz"} <= declared


def test_a_second_file_with_the_node_key_overrides_and_a_dash_p_does_not(tmp_path: pathlib.Path) -> None:
    """What the README tells `ros2 run` users: rclpy puts `-p` under `/**`, applied before `/**/camera:`."""
    second = tmp_path / "camera_video.yaml"
    second.write_text("/**/camera:\n  ros__parameters:\n    source: video\n")
    base = ["--ros-args", "--params-file", str(PARAMS_FILE)]
    assert node_values([*base, "--params-file", str(second)], "camera")[1]["source"] == "video"
    assert node_values([*base, "-p", "source:=video"], "camera")[1]["source"] == "synthetic"
