"""Franka Panda + RGB-D camera -> shielded 6-DoF grasp poses.

    ros2 launch msvla_bringup franka_rgbd.launch.py                   # on the robot
    ros2 launch msvla_bringup franka_rgbd.launch.py simulation:=true  # with the PyBullet simulator

The graph itself is data (config/graphs/franka_rgbd.yaml); this file only turns it into actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from msvla_bringup.graph import load_graph
from msvla_bringup.launch_actions import node_actions


def _nodes(context):
    simulation = LaunchConfiguration("simulation").perform(context).lower() in ("1", "true", "yes")
    spec, base = load_graph("franka_rgbd")
    return node_actions(spec, base, simulation)


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("simulation", default_value="false",
                              description="Also start the PyBullet Franka simulator."),
        OpaqueFunction(function=_nodes),
    ])
