"""depth_encoder: depth sensor_msgs/Image + CameraInfo -> msvla_msgs/SensorFeature ("depth").

The feature carries learned shape channels and, per feature cell, the mean 3-D point in the robot
base frame, computed with the camera intrinsics (CameraInfo) and extrinsics (`camera_to_base`).
"""
from __future__ import annotations

import time

from sensor_msgs.msg import CameraInfo, Image

from msvla_core.data.image import ImageFormatError, depth_to_meters
from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.params import ParamSpec
from msvla_ros.main import run

from .feature_node import FeatureEncoderNode

PARAMS = [
    ParamSpec("camera_to_base", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
              "Pose of the depth camera's optical frame in the robot base frame: x, y, z (m), qx, qy, qz, qw."),
    ParamSpec("max_invalid_fraction", 0.9,
              "Depth images with a larger fraction of NaN/out-of-range pixels are dropped.", min=0.0, max=1.0),
]


class DepthEncoderNode(FeatureEncoderNode):
    modality = "depth"

    def __init__(self):
        super().__init__("depth_encoder", PARAMS)
        self.camera_to_base = pose_to_matrix(self.values["camera_to_base"])
        self.camera: CameraModel | None = None
        self.create_subscription(CameraInfo, "/camera/depth/camera_info", self.on_camera_info, self.sensor_qos)
        self.create_subscription(Image, "/camera/depth/image_raw", self.on_depth, self.sensor_qos)

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


def main(args=None) -> int:
    return run(DepthEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
