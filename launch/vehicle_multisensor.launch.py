"""Vehicle: camera, LiDAR, radar, IMU, wheel and steering sensors -> shielded steering and pedals.

    ros2 launch msvla_bringup vehicle_multisensor.launch.py                   # on the vehicle
    ros2 launch msvla_bringup vehicle_multisensor.launch.py simulation:=true  # with the PyBullet simulator

The graph itself is data (config/graphs/vehicle_multisensor.yaml); this file only turns it into
actions. The shipped checkpoint (models/vehicle_multisensor) is trained in simulation only
(`make train-vehicle`): do not drive a real vehicle with it.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration

from msvla_bringup.graph import load_graph
from msvla_bringup.launch_actions import node_actions

GRAPHS = {"multisensor": "vehicle_multisensor"}


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
                              description="Also start the PyBullet vehicle simulator."),
        DeclareLaunchArgument("variant", default_value="multisensor", choices=sorted(GRAPHS),
                              description="multisensor: camera, LiDAR, radar and IMU encoders."),
        OpaqueFunction(function=_nodes),
    ])
