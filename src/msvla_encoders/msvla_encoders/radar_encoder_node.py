"""radar_encoder: radar target list as sensor_msgs/PointCloud2 -> SensorFeature ("radar").

Input: one PointCloud2 per radar scan on /radar/targets, one point per detection, with the float
fields (names configurable with `field_names`, in this order):
  range            [m], >= 0, distance from the sensor origin
  azimuth          [rad], counter-clockwise from the sensor's +x axis (positive = to the left,
                   REP-103 sensor frame)
  radial_velocity  [m/s], positive = target moving away from the sensor
  rcs              [dBsm], radar cross-section
Any PointField numeric type is accepted and converted to float32. A scan with no detection
(width 0) is valid and encoded as such. Detections with a NaN field are skipped.
"""
from __future__ import annotations

import time

from sensor_msgs.msg import PointCloud2

from msvla_core.data.pointcloud import PointCloudFormatError, pointcloud_to_array
from msvla_core.params import ParamSpec
from msvla_ros.main import run

from .feature_node import FeatureEncoderNode

FIELDS = ["range", "azimuth", "radial_velocity", "rcs"]

PARAMS = [
    ParamSpec("field_names", list(FIELDS),
              "PointCloud2 field names of range [m], azimuth [rad, CCW from +x], radial velocity "
              "[m/s, positive away] and RCS [dBsm], in this order (drivers name them differently)."),
]


class RadarEncoderNode(FeatureEncoderNode):
    modality = "radar"
    extra_params = tuple(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("radar_encoder", **node_kwargs)
        self.fields = tuple(self.values["field_names"])
        if len(self.fields) != 4 or not all(self.fields) or len(set(self.fields)) != 4:
            raise ValueError(f"parameter field_names must list 4 distinct non-empty names "
                             f"(range, azimuth, radial_velocity, rcs), got {list(self.fields)}")
        self.create_subscription(PointCloud2, "/radar/targets", self.on_targets, self.sensor_qos)

    def on_targets(self, msg: PointCloud2) -> None:
        started = time.perf_counter()
        try:
            targets = pointcloud_to_array(msg, self.fields)
        except PointCloudFormatError as exc:
            self.drops.drop("malformed_pointcloud", str(exc))
            return
        self.encode_and_publish(msg.header, targets, started)


def main(args=None) -> int:
    return run(RadarEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
