"""rgb_encoder: sensor_msgs/Image (colour) -> msvla_msgs/SensorFeature (modality "rgb").

With `plane_geometry` (RGB-only graphs of the grasp model) the feature also carries, per feature
cell, where the cell's pixel rays meet the table plane z = `plane_z` in the robot base frame:
computed from the colour CameraInfo and the camera pose (`camera_to_base`, or the latest valid
geometry_msgs/TransformStamped on `extrinsics_topic`), so the grasp head can place grasps without
depth.
"""
from __future__ import annotations

import time

from sensor_msgs.msg import Image

from msvla_core.data.image import ImageFormatError, image_to_rgb
from msvla_core.models.encoders import RgbEncoder
from msvla_core.params import ParamSpec
from msvla_ros.main import run

from .camera_pose import CAMERA_POSE_PARAMS, CameraPose
from .feature_node import FeatureEncoderNode

PARAMS = [
    ParamSpec("plane_geometry", False,
              "Append the table-plane geometry to the feature (RGB-only graphs of the grasp model "
              "set this true; needs CameraInfo and the camera pose)."),
    ParamSpec("plane_z", 0.0, "Height of the table plane in the robot base frame.", unit="m", min=-1.0, max=2.0),
] + CAMERA_POSE_PARAMS


class RgbEncoderNode(FeatureEncoderNode):
    modality = "rgb"
    extra_params = tuple(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("rgb_encoder", **node_kwargs)
        self.plane = self.values["plane_geometry"]
        self.pose: CameraPose | None = None
        if self.plane:
            if not isinstance(self.encoder, RgbEncoder):
                raise ValueError(f"parameter plane_geometry=true needs the grasp model's RGB encoder; "
                                 f"checkpoint {self.model_id} has {type(self.encoder).__name__}")
            self.pose = CameraPose(self, "/camera/color/camera_info")
        elif self.values["extrinsics_topic"]:
            self.get_logger().warning(f"extrinsics_topic={self.values['extrinsics_topic']!r} ignored: "
                                      f"plane_geometry is false, so the camera pose is not used")
        self.create_subscription(Image, "/camera/color/image_raw", self.on_image, self.sensor_qos)

    def on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        if self.pose is not None and self.pose.missing_camera_info():
            return
        try:
            rgb = image_to_rgb(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_image", str(exc))
            return
        raw = rgb if self.pose is None else {"rgb": rgb, "camera": self.pose.camera,
                                             "camera_to_base": self.pose.camera_to_base,
                                             "plane_z": self.values["plane_z"]}
        self.encode_and_publish(msg.header, raw, started)

    def _report(self):
        level, message, values = super()._report()
        if self.pose is not None:
            self.pose.report(values)
        return level, message, values


def main(args=None) -> int:
    return run(RgbEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
