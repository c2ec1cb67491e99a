"""lidar_encoder: sensor_msgs/PointCloud2 -> msvla_msgs/SensorFeature (modality "lidar").

The cloud is read as float32 (N, 4) x, y, z [m], intensity (REP-103 sensor frame) - the raw
format of the lidar encoders. Clouds without the intensity field get intensity 0, so a driver
that omits it still works (the encoder then sees no reflectance cue). Points with a NaN in any of
the read fields are skipped, as organised clouds mark missing returns that way.
"""
from __future__ import annotations

import time

from sensor_msgs.msg import PointCloud2

from msvla_core.data.pointcloud import PointCloudFormatError, cloud_to_xyzi, has_field
from msvla_core.params import ParamSpec
from msvla_ros.main import run

from .feature_node import FeatureEncoderNode

PARAMS = [
    ParamSpec("intensity_field", "intensity",
              "PointCloud2 field read as intensity (e.g. 'intensity', 'reflectivity'); points get "
              "intensity 0 when the cloud has no such field or this is empty."),
]


class LidarEncoderNode(FeatureEncoderNode):
    modality = "lidar"
    extra_params = tuple(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("lidar_encoder", **node_kwargs)
        self._told_no_intensity = False
        self.create_subscription(PointCloud2, "/lidar/points", self.on_cloud, self.sensor_qos)

    def on_cloud(self, msg: PointCloud2) -> None:
        started = time.perf_counter()
        try:
            points = cloud_to_xyzi(msg, self.values["intensity_field"])
        except PointCloudFormatError as exc:
            self.drops.drop("malformed_pointcloud", str(exc))
            return
        if not self._told_no_intensity and not has_field(msg, self.values["intensity_field"]):
            # Not an error (some drivers omit it), but the encoder loses a cue: say so once.
            self._told_no_intensity = True
            self.get_logger().warning(f"clouds on /lidar/points have no field "
                                      f"{self.values['intensity_field']!r}; using intensity 0")
        self.encode_and_publish(msg.header, points, started)


def main(args=None) -> int:
    return run(LidarEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
