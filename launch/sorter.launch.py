"""ros2 launch cardsorter sorter.launch.py [source:=imx500] [backend:=hailo] [database:=DIR] [namespace:=NS]
[params_file:=FILE] [single_process:=true] [rviz:=false] [web:=false]."""

from __future__ import annotations

import os
from typing import Any

import lifecycle_msgs.msg
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.events import Shutdown, matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from launch_ros.utilities import prefix_namespace

from cardsorter.ros import launch_params
from cardsorter.ros.lifecycle import ACTIVATION_ORDER
from cardsorter.ros.node_main import MANAGED_FLAG
from cardsorter.ros.node_specs import NODES, OPTIONAL_NODES

RVIZ_MISSING = ("rviz:=true, but rviz2 is not installed here: install it with "
                "`sudo apt install ros-jazzy-rviz2` (then `source /opt/ros/jazzy/setup.bash`), "
                "or launch with rviz:=false. Nothing was started.")


def _rviz_installed() -> bool:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return False
    return True


def _transition(node: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id))


def _managed(nodes: dict[str, LifecycleNode]) -> list[Any]:
    """Configure every managed node at start and activate it once configured; the camera only once it is
    configured AND its consumers are active (no early frame is lost). A failed transition ends the launch."""
    activate = lifecycle_msgs.msg.Transition.TRANSITION_ACTIVATE
    waiting = {name for name in nodes if name != "camera"}   # consumers not active yet
    camera = {"configured": False, "emitted": False}

    def camera_if_ready() -> list[Any]:
        if "camera" in nodes and camera["configured"] and not waiting and not camera["emitted"]:
            camera["emitted"] = True
            return [_transition(nodes["camera"], activate)]
        return []

    def consumer_active(name: str) -> OpaqueFunction:
        def handler(context: LaunchContext) -> list[Any]:
            waiting.discard(name)
            return camera_if_ready()
        return OpaqueFunction(function=handler)

    def camera_configured(context: LaunchContext) -> list[Any]:
        camera["configured"] = True
        return camera_if_ready()

    actions: list[Any] = []
    for name, node in nodes.items():
        if name == "camera":
            on_configured: list[Any] = [OpaqueFunction(function=camera_configured)]
        else:
            on_configured = [_transition(node, activate)]
            actions.append(RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state="activating", goal_state="active",
                entities=[consumer_active(name)])))
        actions.append(RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, start_state="configuring", goal_state="inactive", entities=on_configured)))
        for start, goal, what in (("configuring", "unconfigured", "configure"), ("activating", "inactive", "activate")):
            actions.append(RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, start_state=start, goal_state=goal,
                entities=[LogInfo(msg=f"[cardsorter] {name} failed to {what} (its error above says why): stopping"),
                          EmitEvent(event=Shutdown(reason=f"{name} failed to {what}"))])))
        actions.append(_transition(node, lifecycle_msgs.msg.Transition.TRANSITION_CONFIGURE))
    return actions


def _end_launch(context: LaunchContext) -> list[Any]:
    """A process that ends on its own (a start error, a crash) ends the launch; during a shutdown, nothing
    (a second Shutdown would send every remaining process a second SIGINT)."""
    return [] if context.is_shutdown else [EmitEvent(event=Shutdown(reason="a cardsorter process ended"))]


def _setup(context: LaunchContext) -> list[Any]:
    if LaunchConfiguration("rviz").perform(context) == "true" and not _rviz_installed():
        raise RuntimeError(RVIZ_MISSING)   # raised before any process starts: launch reports it and exits
    params_file = LaunchConfiguration("params_file").perform(context)
    if not os.path.isfile(params_file):
        raise RuntimeError(f"params_file:={params_file} is not a file")
    ns_arg = LaunchConfiguration("namespace").perform(context)
    launch_params.normalize_namespace(ns_arg)   # a bad name fails here, naming it
    full_ns = launch_params.normalize_namespace(
        prefix_namespace(context.launch_configurations.get("ros_namespace"), ns_arg or None) or "")
    overrides = launch_params.overrides_from_launch(
        {arg: LaunchConfiguration(arg).perform(context) for arg in launch_params.LAUNCH_ARGUMENTS})
    override_file = str(launch_params.write_override_file(params_file, full_ns, [s.name for s in NODES], overrides))
    optional = [s for s in OPTIONAL_NODES if LaunchConfiguration(s.name).perform(context) == "true"]
    common: dict[str, Any] = {"package": "cardsorter", "output": "screen", "emulate_tty": True,
                              "parameters": [params_file, override_file],
                              "on_exit": [OpaqueFunction(function=_end_launch)]}
    actions: list[Any] = []
    if LaunchConfiguration("single_process").perform(context) == "true":
        # No name=: a name remaps every node of the process (PLATFORM_NOTES §5); the runner drives its
        # managed nodes to active itself.
        actions.append(Node(executable="all_nodes", namespace=ns_arg or None,
                            arguments=[f"--{s.name}" for s in optional], **common))
    else:
        managed: dict[str, LifecycleNode] = {}
        for spec in NODES:
            if spec.name in ACTIVATION_ORDER:
                managed[spec.name] = LifecycleNode(executable=spec.name, name=spec.name, namespace=ns_arg,
                                                   arguments=[MANAGED_FLAG], **common)
                actions.append(managed[spec.name])
            else:
                actions.append(Node(executable=spec.name, name=spec.name, namespace=ns_arg or None, **common))
        actions += _managed(managed)
        actions += [Node(executable=s.name, name=s.name, namespace=ns_arg or None, **common) for s in optional]
    if LaunchConfiguration("rviz").perform(context) == "true":
        actions.append(Node(package="rviz2", executable="rviz2", output="screen", namespace=ns_arg or None,
                            arguments=["-d", PathJoinSubstitution([FindPackageShare("cardsorter"), "config",
                                                                   "cardsorter.rviz"])]))
    return actions


def generate_launch_description() -> LaunchDescription:
    pkg = FindPackageShare("cardsorter")
    return LaunchDescription([
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([pkg, "config", "sorter.yaml"]),
                              description="the one parameters file (node blocks keyed /**/<node>)"),
        DeclareLaunchArgument("source", default_value="imx500", choices=["imx500", "video", "synthetic", "none", ""],
                              description="camera source (none: replaying a bag into the graph; '': as in params_file)"),
        DeclareLaunchArgument("backend", default_value="hailo", choices=["hailo", "onnx", ""],
                              description="embedding backend ('': as in params_file)"),
        DeclareLaunchArgument("database", default_value=os.path.expanduser("~/cardsorter/db"),
                              description="reference database directory (built with `cardsorter db build`; "
                                          "'': as in params_file)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="ROS namespace of every node (two sorters on one network: station1, station2)"),
        DeclareLaunchArgument("single_process", default_value="true", choices=["true", "false"],
                              description="true: every node in one process (all_nodes, the robot's memory budget); "
                                          "false: one process per node"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"], description="open rviz2"),
        DeclareLaunchArgument("web", default_value="false", choices=["true", "false"],
                              description="serve the operator's web view on 127.0.0.1 (config: the web section)"),
        OpaqueFunction(function=_setup),
    ])
