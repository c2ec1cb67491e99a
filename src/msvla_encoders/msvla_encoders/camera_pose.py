"""Camera intrinsics (CameraInfo) and extrinsics (parameter or latched TransformStamped) for the
encoder nodes that turn pixels into base-frame geometry (depth, and RGB-only plane geometry)."""
from __future__ import annotations

from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo

from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.params import ParamSpec
from msvla_core.preprocessing import ExtrinsicsError, extrinsics_matrix
from msvla_ros.qos import LATCHED

CAMERA_POSE_PARAMS = [
    ParamSpec("camera_to_base", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
              "Pose of the camera's optical frame in the robot base frame: x, y, z (m), qx, qy, qz, qw; "
              "used until a valid transform arrives on extrinsics_topic."),
    ParamSpec("extrinsics_topic", "",
              "geometry_msgs/TransformStamped topic (latched) of the camera pose in the base frame "
              "(header.frame_id = base, child_frame_id = camera optical frame); empty: use "
              "camera_to_base only."),
]


class CameraPose:
    """Latest valid CameraInfo and camera pose of one node; bad messages are dropped by reason
    (the previous value stays in use)."""

    def __init__(self, node, camera_info_topic: str):
        self.node, self.camera_info_topic = node, camera_info_topic
        self.camera_to_base = pose_to_matrix(node.values["camera_to_base"])
        self.camera: CameraModel | None = None
        self.extrinsics_received = 0
        node.create_subscription(CameraInfo, camera_info_topic, self.on_camera_info, node.sensor_qos)
        self.topic = node.values["extrinsics_topic"]
        if self.topic:
            node.create_subscription(TransformStamped, self.topic, self.on_extrinsics, LATCHED)

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_k(msg.k, msg.width, msg.height)
        except ValueError as exc:
            self.node.drops.drop("malformed_camera_info", f"CameraInfo.k: {exc}")

    def on_extrinsics(self, msg: TransformStamped) -> None:
        t, r = msg.transform.translation, msg.transform.rotation
        try:
            self.camera_to_base = extrinsics_matrix((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))
        except ExtrinsicsError as exc:
            self.node.drops.drop(f"bad_extrinsics_{exc.field}",
                                 f"TransformStamped.transform.{exc.field} on {self.topic}: {exc}")
            return
        self.extrinsics_received += 1
        self.node.get_logger().info(f"camera pose from {msg.header.frame_id!r} to {msg.child_frame_id!r}: "
                                    f"{self.camera_to_base[:3, 3].round(4).tolist()} m")

    def missing_camera_info(self) -> bool:
        """True (and the frame counted as dropped) while no valid CameraInfo has arrived."""
        if self.camera is None:
            self.node.drops.drop("no_camera_info", f"no valid CameraInfo received on {self.camera_info_topic} yet")
            return True
        return False

    def report(self, values: dict) -> None:
        if self.topic:
            values["extrinsics_received"] = self.extrinsics_received
