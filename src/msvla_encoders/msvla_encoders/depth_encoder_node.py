"""depth_encoder: depth sensor_msgs/Image + CameraInfo -> msvla_msgs/SensorFeature ("depth").

The feature carries learned shape channels and, per feature cell, the mean 3-D point in the robot
base frame, computed with the camera intrinsics (CameraInfo) and extrinsics: `camera_to_base`, or
the latest valid geometry_msgs/TransformStamped on `extrinsics_topic` when that is set (a
simulator that moves the camera per episode publishes it there, latched).
"""
from __future__ import annotations

import time

from sensor_msgs.msg import Image

from msvla_core.data.image import ImageFormatError, depth_to_meters
from msvla_core.params import ParamSpec
from msvla_ros.main import run

from .camera_pose import CAMERA_POSE_PARAMS, CameraPose
from .feature_node import FeatureEncoderNode

PARAMS = CAMERA_POSE_PARAMS + [
    ParamSpec("max_invalid_fraction", 0.9,
              "Depth images with a larger fraction of NaN/out-of-range pixels are dropped.", min=0.0, max=1.0),
]


class DepthEncoderNode(FeatureEncoderNode):
    modality = "depth"
    extra_params = tuple(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("depth_encoder", **node_kwargs)
        self.pose = CameraPose(self, "/camera/depth/camera_info")
        self.create_subscription(Image, "/camera/depth/image_raw", self.on_depth, self.sensor_qos)

    def on_depth(self, msg: Image) -> None:
        started = time.perf_counter()
        if self.pose.missing_camera_info():
            return
        try:
            depth = depth_to_meters(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_depth", str(exc))
            return
        raw = {"depth": depth, "camera": self.pose.camera, "camera_to_base": self.pose.camera_to_base,
               "max_invalid_fraction": self.values["max_invalid_fraction"]}
        self.encode_and_publish(msg.header, raw, started)

    def _report(self):
        level, message, values = super()._report()
        self.pose.report(values)
        return level, message, values


def main(args=None) -> int:
    return run(DepthEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
