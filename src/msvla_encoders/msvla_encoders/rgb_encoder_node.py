"""rgb_encoder: sensor_msgs/Image (colour) -> msvla_msgs/SensorFeature (modality "rgb").

With `plane_geometry` (RGB-only graphs of the grasp model) the feature also carries, per feature
cell, where the cell's pixel rays meet the table plane z = `plane_z` in the robot base frame:
computed from the colour CameraInfo and the camera pose (`camera_to_base`, or the latest valid
geometry_msgs/TransformStamped on `extrinsics_topic`), so the grasp head can place grasps without
depth.
"""
from __future__ import annotations

import time

from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image

from msvla_core.data.image import ImageFormatError, image_to_rgb
from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.models.encoders import RgbEncoder
from msvla_core.params import ParamSpec
from msvla_core.preprocessing import ExtrinsicsError, extrinsics_matrix
from msvla_ros.main import run
from msvla_ros.qos import LATCHED

from .feature_node import FeatureEncoderNode

CAMERA_INFO_TOPIC = "/camera/color/camera_info"

PARAMS = [
    ParamSpec("plane_geometry", False,
              "Append the table-plane geometry to the feature (RGB-only graphs of the grasp model "
              "set this true; needs CameraInfo and the camera pose)."),
    ParamSpec("plane_z", 0.0, "Height of the table plane in the robot base frame.", unit="m", min=-1.0, max=2.0),
    ParamSpec("camera_to_base", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
              "Pose of the colour camera's optical frame in the robot base frame: x, y, z (m), qx, qy, qz, "
              "qw; used until a valid transform arrives on extrinsics_topic."),
    ParamSpec("extrinsics_topic", "",
              "geometry_msgs/TransformStamped topic (latched) of the camera pose in the base frame "
              "(header.frame_id = base, child_frame_id = camera optical frame); empty: use "
              "camera_to_base only."),
]


class RgbEncoderNode(FeatureEncoderNode):
    modality = "rgb"

    def __init__(self):
        super().__init__("rgb_encoder", PARAMS)
        self.plane = self.values["plane_geometry"]
        self.camera_to_base = pose_to_matrix(self.values["camera_to_base"])
        self.camera: CameraModel | None = None
        self.extrinsics_received = 0
        if self.plane:
            if not isinstance(self.encoder, RgbEncoder):
                raise ValueError(f"parameter plane_geometry=true needs the grasp model's RGB encoder; "
                                 f"checkpoint {self.model_id} has {type(self.encoder).__name__}")
            self.create_subscription(CameraInfo, CAMERA_INFO_TOPIC, self.on_camera_info, self.sensor_qos)
            topic = self.values["extrinsics_topic"]
            if topic:
                self.create_subscription(TransformStamped, topic, self.on_extrinsics, LATCHED)
        elif self.values["extrinsics_topic"]:
            self.get_logger().warning(f"extrinsics_topic={self.values['extrinsics_topic']!r} ignored: "
                                      f"plane_geometry is false, so the camera pose is not used")
        self.create_subscription(Image, "/camera/color/image_raw", self.on_image, self.sensor_qos)

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_k(msg.k, msg.width, msg.height)
        except ValueError as exc:
            self.drops.drop("malformed_camera_info", f"CameraInfo.k: {exc}")

    def on_extrinsics(self, msg: TransformStamped) -> None:
        t, r = msg.transform.translation, msg.transform.rotation
        try:
            self.camera_to_base = extrinsics_matrix((t.x, t.y, t.z), (r.x, r.y, r.z, r.w))
        except ExtrinsicsError as exc:  # the previous pose stays in use
            self.drops.drop(f"bad_extrinsics_{exc.field}", f"TransformStamped.transform.{exc.field} on "
                                                           f"{self.values['extrinsics_topic']}: {exc}")
            return
        self.extrinsics_received += 1
        self.get_logger().info(f"camera pose from {msg.header.frame_id!r} to {msg.child_frame_id!r}: "
                               f"{self.camera_to_base[:3, 3].round(4).tolist()} m")

    def on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        if self.plane and self.camera is None:
            self.drops.drop("no_camera_info", f"no valid CameraInfo received on {CAMERA_INFO_TOPIC} yet")
            return
        try:
            rgb = image_to_rgb(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_image", str(exc))
            return
        raw = rgb if not self.plane else {"rgb": rgb, "camera": self.camera, "camera_to_base": self.camera_to_base,
                                          "plane_z": self.values["plane_z"]}
        self.encode_and_publish(msg.header, raw, started)

    def _report(self):
        level, message, values = super()._report()
        if self.plane and self.values["extrinsics_topic"]:
            values["extrinsics_received"] = self.extrinsics_received
        return level, message, values


def main(args=None) -> int:
    return run(RgbEncoderNode, args)
