"""In-process node test: franka_sim streams consistent RGB-D data and executes shielded grasps."""
import json

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Int64, String

from msvla_ros.testing import Spinner, wait_for_subscribers
from msvla_core.data.image import depth_to_meters, image_to_rgb
from msvla_core.geometry import top_down_grasp_quaternion
from msvla_msgs.msg import GraspPose
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND, LATCHED, SENSOR


def test_sim_streams_stamped_rgbd_and_executes_a_grasp_for_the_instruction(ros, probe, spin_nodes):
    from msvla_sim.franka_sim_node import FrankaSimNode

    node = FrankaSimNode()
    color = probe.collect(Image, "/camera/color/image_raw", SENSOR)
    depth = probe.collect(Image, "/camera/depth/image_raw", SENSOR)
    info = probe.collect(CameraInfo, "/camera/depth/camera_info", SENSOR)
    joints = probe.collect(JointState, "/joint_states", SENSOR)
    scenes = probe.collect(String, "/sim/scene", LATCHED)
    outcomes = probe.collect(String, "/sim/grasp_outcome", COMMAND)
    grasp_pub = probe.create_publisher(GraspPose, "/msvla/grasp", COMMAND)
    instruction_pub = probe.create_publisher(String, "/msvla/instruction", LATCHED)
    reset_pub = probe.create_publisher(Int64, "/sim/reset", COMMAND)
    spinner = spin_nodes(node, probe)
    try:
        assert Spinner.wait_for(lambda: len(color) >= 2 and len(depth) >= 2 and info and joints and scenes, 20.0)
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in color[:2]}
        assert stamps <= {(m.header.stamp.sec, m.header.stamp.nanosec) for m in depth}, "RGB and depth share stamps"
        rgb = image_to_rgb(color[0])
        d = depth_to_meters(depth[0])
        assert rgb.shape == (128, 128, 3) and d.shape == (128, 128)
        assert np.nanmin(d) > 0.3 and np.nanmax(d) < 2.0
        assert len(joints[0].name) == len(joints[0].position) == 9

        wait_for_subscribers(reset_pub)
        reset_pub.publish(Int64(data=77))
        assert Spinner.wait_for(lambda: json.loads(scenes[-1].data)["seed"] == 77, 10.0)
        scene = json.loads(scenes[-1].data)
        target = scene["objects"][0]
        wait_for_subscribers(instruction_pub, 1)
        instruction = f"pick up the {target['name']}"
        instruction_pub.publish(String(data=instruction))
        assert Spinner.wait_for(lambda: node.instruction == instruction)

        x, y, z = target["position"]
        grasp = GraspPose(width=0.08, score=1.0, instruction=instruction)
        grasp.header.stamp = probe.now_stamp()
        grasp.header.frame_id = "panda_link0"
        grasp.pose.position.x, grasp.pose.position.y, grasp.pose.position.z = x, y, z
        q = top_down_grasp_quaternion(target["yaw"])
        grasp.pose.orientation.x, grasp.pose.orientation.y, grasp.pose.orientation.z, grasp.pose.orientation.w = q
        wait_for_subscribers(grasp_pub)
        grasp_pub.publish(grasp)
        started_ns = stamp_to_ns(grasp.header.stamp)
        assert Spinner.wait_for(lambda: outcomes, 20.0)
        finished_ns = probe.get_clock().now().nanoseconds
        # the camera keeps streaming while the grasp executes (a blocking call in the node)
        Spinner.wait_for(lambda: False, 0.5)
        during = [m for m in color if started_ns < stamp_to_ns(m.header.stamp) < finished_ns]
        assert len(during) >= 2, f"{len(during)} colour frames during the grasp"
        result = json.loads(outcomes[0].data)
        assert result["target"] == target["name"] and result["seed"] == 77
        assert result["success"], result
    finally:
        spinner.shutdown()  # no callback may run while the physics server disconnects
        node.close()
