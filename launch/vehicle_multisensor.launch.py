"""Vehicle: camera, LiDAR, radar, IMU, wheel and steering sensors -> shielded steering and pedals.

    ros2 launch msvla_bringup vehicle_multisensor.launch.py                   # on the vehicle (dry run)
    ros2 launch msvla_bringup vehicle_multisensor.launch.py simulation:=true  # with the PyBullet simulator

The graph itself is data (config/graphs/vehicle_multisensor.yaml); this file only names it. The
shipped checkpoint (models/vehicle_multisensor) is trained in simulation only (`make
train-vehicle`): do not drive a real vehicle with it.
"""
from msvla_bringup.launch_actions import graph_launch_description


def generate_launch_description():
    return graph_launch_description(
        {"multisensor": "vehicle_multisensor"}, "multisensor",
        variant_help="multisensor: camera, LiDAR, radar and IMU encoders.",
        simulator_help="Also start the PyBullet vehicle simulator.")
