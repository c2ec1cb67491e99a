"""Franka Panda + RGB-D camera -> shielded 6-DoF grasp poses.

    ros2 launch msvla_bringup franka_rgbd.launch.py                   # on the robot (dry run)
    ros2 launch msvla_bringup franka_rgbd.launch.py actuation_enabled:=true  # on the robot, commanding it
    ros2 launch msvla_bringup franka_rgbd.launch.py simulation:=true  # with the PyBullet simulator
    ros2 launch msvla_bringup franka_rgbd.launch.py variant:=rgb      # colour camera only, no depth

The graph itself is data (config/graphs/franka_rgbd.yaml, or franka_rgb.yaml for variant:=rgb);
this file only names it.
"""
from msvla_bringup.launch_actions import graph_launch_description


def generate_launch_description():
    return graph_launch_description(
        {"rgbd": "franka_rgbd", "rgb": "franka_rgb"}, "rgbd",
        variant_help="rgbd: colour + depth encoders; rgb: colour only, grasps on the table plane (no depth "
                     "sensor).",
        simulator_help="Also start the PyBullet Franka simulator.")
