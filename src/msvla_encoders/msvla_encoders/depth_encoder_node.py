"""depth_encoder: depth sensor_msgs/Image + CameraInfo -> msvla_msgs/SensorFeature ("depth").

The feature carries learned shape channels and, per feature cell, the mean 3-D point in the robot
base frame, computed with the camera intrinsics (CameraInfo) and extrinsics: `camera_to_base`, or
the latest valid geometry_msgs/TransformStamped on `extrinsics_topic` when that is set (a
simulator that moves the camera per episode publishes it there, latched).
"""
from __future__ import annotations

import time

from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image

from msvla_core.data.image import ImageFormatError, depth_to_meters
from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.params import ParamSpec
from msvla_core.preprocessing import ExtrinsicsError, extrinsics_matrix
from msvla_ros.main import run
from msvla_ros.qos import LATCHED

from .feature_node import FeatureEncoderNode

PARAMS = [
    ParamSpec("camera_to_base", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
              "Pose of the depth camera's optical frame in the robot base frame: x, y, z (m), qx, qy, qz, qw; "
              "used until a valid transform arrives on extrinsics_topic."),
    ParamSpec("extrinsics_topic", "",
              "geometry_msgs/TransformStamped topic (latched) of the camera pose in the base frame "
              "(header.frame_id = base, child_frame_id = camera optical frame); empty: use "
              "camera_to_base only."),
    ParamSpec("max_invalid_fraction", 0.9,
              "Depth images with a larger fraction of NaN/out-of-range pixels are dropped.", min=0.0, max=1.0),
]


class DepthEncoderNode(FeatureEncoderNode):
    modality = "depth"

    def __init__(self):
        super().__init__("depth_encoder", PARAMS)
        self.camera_to_base = pose_to_matrix(self.values["camera_to_base"])
        self.camera: CameraModel | None = None
        self.extrinsics_received = 0
        self.create_subscription(CameraInfo, "/camera/depth/camera_info", self.on_camera_info, self.sensor_qos)
        if self.values["extrinsics_topic"]:
            self.create_subscription(TransformStamped, self.values["extrinsics_topic"], self.on_extrinsics, LATCHED)
        self.create_subscription(Image, "/camera/depth/image_raw", self.on_depth, self.sensor_qos)

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

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            self.camera = CameraModel.from_k(msg.k, msg.width, msg.height)
        except ValueError as exc:
            self.drops.drop("malformed_camera_info", f"CameraInfo.k: {exc}")

    def on_depth(self, msg: Image) -> None:
        started = time.perf_counter()
        if self.camera is None:
            self.drops.drop("no_camera_info", "no valid CameraInfo received on /camera/depth/camera_info yet")
            return
        try:
            depth = depth_to_meters(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_depth", str(exc))
            return
        raw = {"depth": depth, "camera": self.camera, "camera_to_base": self.camera_to_base,
               "max_invalid_fraction": self.values["max_invalid_fraction"]}
        self.encode_and_publish(msg.header, raw, started)

    def _report(self):
        level, message, values = super()._report()
        if self.values["extrinsics_topic"]:
            values["extrinsics_received"] = self.extrinsics_received
        return level, message, values


def main(args=None) -> int:
    return run(DepthEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
