"""Franka Panda + RGB-D camera -> shielded 6-DoF grasp poses.

    ros2 launch msvla_bringup franka_rgbd.launch.py                   # on the robot
    ros2 launch msvla_bringup franka_rgbd.launch.py simulation:=true  # with the PyBullet simulator
    ros2 launch msvla_bringup franka_rgbd.launch.py variant:=rgb      # colour camera only, no depth

The graph itself is data (config/graphs/franka_rgbd.yaml, or franka_rgb.yaml for variant:=rgb);
this file only turns it into actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from msvla_bringup.graph import load_graph
from msvla_bringup.launch_actions import node_actions

GRAPHS = {"rgbd": "franka_rgbd", "rgb": "franka_rgb"}


def _nodes(context):
    simulation = LaunchConfiguration("simulation").perform(context).lower() in ("1", "true", "yes")
    variant = LaunchConfiguration("variant").perform(context)
    if variant not in GRAPHS:
        raise ValueError(f"launch argument variant:={variant!r} must be one of {sorted(GRAPHS)}")
    spec, base = load_graph(GRAPHS[variant])
    return node_actions(spec, base, simulation)


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("simulation", default_value="false",
                              description="Also start the PyBullet Franka simulator."),
        DeclareLaunchArgument("variant", default_value="rgbd", choices=sorted(GRAPHS),
                              description="rgbd: colour + depth encoders; rgb: colour only, grasps on "
                                          "the table plane (no depth sensor)."),
        OpaqueFunction(function=_nodes),
    ])
