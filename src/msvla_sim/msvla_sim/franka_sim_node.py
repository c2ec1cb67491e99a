"""franka_sim: PyBullet Panda tabletop with a fixed RGB-D camera, over ROS 2.

Publishes the colour and depth images with one shared stamp, their CameraInfo, the joint states,
the camera's pose in the base frame (latched TransformStamped on /camera/extrinsics, new at every
reset when the camera is jittered) and a scene description (latched JSON). Executes each shielded grasp for the current instruction
once per episode and publishes the outcome (success = the object the instruction names was
lifted). A new episode starts with a seed on /sim/reset.
"""
from __future__ import annotations

import json
import time

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Int64, String

from msvla_core.data.image import array_to_image_fields
from msvla_core.geometry import grasp_yaw_from_quaternion
from msvla_core.params import ParamSpec
from msvla_msgs.msg import GraspPose
from msvla_ros.diagnostics import OK, Diagnostics
from msvla_ros.main import run
from msvla_ros.messages import stamp_to_ns, transform_stamped
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import COMMAND, LATCHED, SENSOR
from msvla_ros.qos_events import PolledQosEvents

from .camera import BASE_FRAME, camera_spec_from_pose
from .catalogue import SCENE_SETS, SPLITS
from .franka_scene import FrankaTabletopScene
from .instructions import resolve_instruction
from .sensor_model import CameraJitter, SensorNoise

PARAMS = [
    ParamSpec("rate_hz", 10.0, "Camera and joint-state publishing rate.", unit="Hz", min=0.5, max=60.0),
    ParamSpec("image_width", 128, "Rendered image width.", unit="px", min=32, max=1280),
    ParamSpec("image_height", 128, "Rendered image height.", unit="px", min=32, max=960),
    ParamSpec("depth_encoding", "32FC1", "Depth image encoding: metres as float or millimetres as uint16.",
              choices=("32FC1", "16UC1")),
    ParamSpec("camera_to_base", [0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751],
              "Pose of the camera optical frame in panda_link0: x, y, z (m), qx, qy, qz, qw."),
    ParamSpec("seed", 0, "Seed of the first scene.", min=0, max=2**31 - 1),
    ParamSpec("n_objects", 0, "Objects per scene; 0 picks a random count.", min=0, max=8),
    ParamSpec("scene_set", "basic", "basic: 3-6 distinct primitives; cluttered: 5-8 mixed objects and meshes "
              "with repeated colours.", choices=tuple(sorted(SCENE_SETS))),
    ParamSpec("split", "train", "heldout: toy meshes no training scene uses.", choices=SPLITS),
    ParamSpec("sensor_noise", False, "Depth noise and holes, RGB noise."),
    ParamSpec("camera_jitter", False, "Move the camera randomly around camera_to_base at every reset; "
              "the true pose is published on /camera/extrinsics."),
    ParamSpec("execute_grasps", True, "Execute shielded grasps (false: only stream sensors).", read_only=False),
]


class FrankaSimNode(PolledQosEvents, Node):
    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(PARAMS)

    def __init__(self):
        super().__init__("franka_sim")
        v = declare_parameters(self, self.parameter_specs())
        self.params = v
        self.scene = FrankaTabletopScene(v["image_width"], v["image_height"],
                                         camera=camera_spec_from_pose(v["camera_to_base"]),
                                         scene_set=v["scene_set"], split=v["split"],
                                         noise=SensorNoise() if v["sensor_noise"] else None,
                                         jitter=CameraJitter() if v["camera_jitter"] else None)
        self.color_pub = self.create_publisher(Image, "/camera/color/image_raw", SENSOR)
        self.color_info_pub = self.create_publisher(CameraInfo, "/camera/color/camera_info", SENSOR)
        self.depth_pub = self.create_publisher(Image, "/camera/depth/image_raw", SENSOR)
        self.depth_info_pub = self.create_publisher(CameraInfo, "/camera/depth/camera_info", SENSOR)
        self.joint_pub = self.create_publisher(JointState, "/joint_states", SENSOR)
        self.scene_pub = self.create_publisher(String, "/sim/scene", LATCHED)
        self.extrinsics_pub = self.create_publisher(TransformStamped, "/camera/extrinsics", LATCHED)
        self.outcome_pub = self.create_publisher(String, "/sim/grasp_outcome", COMMAND)
        self.create_subscription(GraspPose, "/msvla/grasp", self.on_grasp, COMMAND)
        self.create_subscription(String, "/msvla/instruction", self.on_instruction, LATCHED)
        self.create_subscription(Int64, "/sim/reset", self.on_reset, COMMAND)
        self.instruction = ""
        self.episode = 0
        self.frames = 0
        self.reset(v["seed"])
        self.period_s = 1.0 / v["rate_hz"]
        self.last_frame_s = 0.0
        self.timer = self.create_timer(self.period_s, self.on_timer)
        self.scene.step_observer = self.stream_while_executing
        self.diagnostics = Diagnostics(self, "sim/franka", lambda: (OK, "ok", {
            "episode": self.episode, "seed": self.seed, "frames": self.frames, "executed": self.executed}))

    def close(self) -> None:
        self.timer.cancel()  # no render may run against a disconnected physics server
        self.scene.close()

    def reset(self, seed: int) -> None:
        self.seed = int(seed)
        description = self.scene.reset(self.seed, self.params["n_objects"] or None)
        self.reset_ns = self.get_clock().now().nanoseconds
        self.executed = False
        self.episode += 1
        description["episode"] = self.episode
        self.extrinsics_pub.publish(self.extrinsics(description))
        self.scene_pub.publish(String(data=json.dumps(description)))
        self.get_logger().info(f"episode {self.episode}: seed {self.seed}, objects "
                               f"{[o['name'] for o in description['objects']]}")

    def extrinsics(self, description: dict) -> TransformStamped:
        return transform_stamped(description["camera_to_base"], BASE_FRAME, description["camera"]["frame_id"],
                                 self.get_clock().now().to_msg())

    def on_reset(self, msg: Int64) -> None:
        if msg.data < 0:
            self.get_logger().error(f"/sim/reset: seed {msg.data} is negative; ignored")
            return
        self.reset(msg.data)

    def on_instruction(self, msg: String) -> None:
        self.instruction = " ".join(msg.data.split())

    def stream_while_executing(self) -> None:
        """A grasp blocks this node's executor for seconds; the camera keeps streaming meanwhile
        (at rate_hz of wall time) so the graph downstream sees live sensors, as on a real robot."""
        if time.monotonic() - self.last_frame_s >= self.period_s:
            self.on_timer()

    def on_timer(self) -> None:
        self.last_frame_s = time.monotonic()
        rgb, depth, camera = self.scene.render()
        stamp = self.get_clock().now().to_msg()
        frame = camera.frame_id if hasattr(camera, "frame_id") else "tabletop_camera_optical_frame"
        color = Image(**array_to_image_fields(rgb, "rgb8"))
        if self.params["depth_encoding"] == "16UC1":
            mm = np.where(np.isfinite(depth), np.round(depth * 1000.0), 0).clip(0, 65535).astype(np.uint16)
            depth_msg = Image(**array_to_image_fields(mm, "16UC1"))
        else:
            depth_msg = Image(**array_to_image_fields(depth.astype(np.float32), "32FC1"))
        info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0], distortion_model="plumb_bob",
                          d=[0.0] * 5, k=[float(x) for x in np.asarray(camera.K).ravel()],
                          r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0])
        k = np.asarray(camera.K)
        info.p = [k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
        for msg in (color, depth_msg, info):
            msg.header.stamp = stamp
            msg.header.frame_id = frame
        names, positions, velocities = self.scene.joint_state()
        joints = JointState(name=names, position=list(positions), velocity=list(velocities))
        joints.header.stamp = stamp
        self.color_pub.publish(color)
        self.color_info_pub.publish(info)
        self.depth_pub.publish(depth_msg)
        self.depth_info_pub.publish(info)
        self.joint_pub.publish(joints)
        self.frames += 1

    def on_grasp(self, msg: GraspPose) -> None:
        if not self.get_parameter("execute_grasps").value or self.executed:
            return
        if stamp_to_ns(msg.header.stamp) < self.reset_ns:
            return  # computed from images of the previous episode
        if not self.instruction or msg.instruction != self.instruction:
            return  # answers an instruction that is no longer current
        p = msg.pose.position
        yaw = grasp_yaw_from_quaternion([msg.pose.orientation.x, msg.pose.orientation.y,
                                         msg.pose.orientation.z, msg.pose.orientation.w])
        self.executed = True
        # resolved before the grasp moves anything: spatial words refer to the scene as it was seen
        target = resolve_instruction(self.instruction, self.scene.scene_description())
        outcome = self.scene.execute_grasp((p.x, p.y, p.z), yaw, float(msg.width))
        result = {"episode": self.episode, "seed": self.seed, "instruction": self.instruction,
                  "target": target, "success": bool(target is not None and outcome.success_for(target)),
                  "grasp_stamp_ns": stamp_to_ns(msg.header.stamp), **outcome.to_dict()}
        self.outcome_pub.publish(String(data=json.dumps(result)))
        self.get_logger().info(f"episode {self.episode}: {self.instruction!r} -> lifted {outcome.lifted} "
                               f"({'success' if result['success'] else 'failure'})")


def main(args=None) -> int:
    return run(FrankaSimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
