"""ros2 launch cardsorter sorter.launch.py [source:=imx500] [backend:=hailo] [database:=DIR] [rviz:=true] [web:=true]."""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from cardsorter.ros.graph import NODES, OPTIONAL_NODES


def generate_launch_description() -> LaunchDescription:
    pkg = FindPackageShare("cardsorter")
    params_file = LaunchConfiguration("params_file")
    source = LaunchConfiguration("source")
    backend = LaunchConfiguration("backend")
    database = LaunchConfiguration("database")
    overrides = {
        "camera": {"source": source},
        "embedder": {"backend": backend},
        "matcher": {"database": database},
    }
    actions = [
        DeclareLaunchArgument("params_file", default_value=PathJoinSubstitution([pkg, "config", "sorter.yaml"]),
                              description="the one parameters file"),
        DeclareLaunchArgument("source", default_value="imx500", choices=["imx500", "video", "synthetic", "none"],
                              description="camera source (none: replaying a bag into the graph)"),
        DeclareLaunchArgument("backend", default_value="hailo", choices=["hailo", "onnx"],
                              description="embedding backend"),
        DeclareLaunchArgument("database", default_value=os.path.expanduser("~/cardsorter/db"),
                              description="reference database directory (built with `cardsorter db build`)"),
        DeclareLaunchArgument("rviz", default_value="false", choices=["true", "false"], description="open rviz2"),
        DeclareLaunchArgument("web", default_value="false", choices=["true", "false"],
                              description="serve the operator's web view on 127.0.0.1 (config: the web section)"),
    ]
    for spec in NODES:
        actions.append(Node(package="cardsorter", executable=spec.name, name=spec.name, output="screen",
                            emulate_tty=True, parameters=[params_file, overrides.get(spec.name, {})]))
    for spec in OPTIONAL_NODES:
        actions.append(Node(package="cardsorter", executable=spec.name, name=spec.name, output="screen",
                            emulate_tty=True, parameters=[params_file],
                            condition=IfCondition(LaunchConfiguration(spec.name))))
    actions.append(Node(package="rviz2", executable="rviz2", output="screen",
                        arguments=["-d", PathJoinSubstitution([pkg, "config", "cardsorter.rviz"])],
                        condition=IfCondition(LaunchConfiguration("rviz"))))
    return LaunchDescription(actions)
