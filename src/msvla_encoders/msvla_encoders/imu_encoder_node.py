"""imu_encoder: sensor_msgs/Imu stream -> windowed SensorFeature ("imu") at a fixed rate.

IMUs publish far faster (hundreds of Hz) than the rest of the graph consumes features, so each
message only goes into a time-ordered buffer (msvla_core.data.imu_window.ImuWindow, shared with
the trainers). A timer at `rate_hz` encodes the last `window_s` seconds - (T, 7) [accel m/s^2,
gyro rad/s, time offset s relative to the newest sample] - whenever new samples arrived since the
previous feature, stamped with the newest sample's stamp. Orientation is not used.
"""
from __future__ import annotations

import time

from sensor_msgs.msg import Imu
from std_msgs.msg import Header

from msvla_core.data.imu_window import ImuSampleError, ImuWindow
from msvla_core.params import ParamSpec
from msvla_ros.main import run
from msvla_ros.messages import ns_to_stamp, stamp_to_ns

from .feature_node import FeatureEncoderNode

PARAMS = [
    ParamSpec("rate_hz", 20.0, "Rate at which windowed IMU features are published (only when new "
              "samples arrived).", unit="Hz", min=1.0, max=200.0),
    ParamSpec("window_s", 0.2, "Duration of IMU history in each feature, ending at the newest "
              "sample.", unit="s", min=0.005, max=10.0),
    ParamSpec("max_samples", 2000, "Upper bound on buffered samples (memory bound if stamps or "
              "rates are wrong); with fewer samples than window_s * rate the window is shorter.",
              min=1, max=100000),
]


class ImuEncoderNode(FeatureEncoderNode):
    modality = "imu"
    extra_params = tuple(PARAMS)
    default_queue_depth = 100  # covers bursts of IMU messages while the node encodes a window

    def __init__(self):
        super().__init__("imu_encoder")
        self.buffer = ImuWindow(self.values["window_s"], self.values["max_samples"])
        self.accepted = 0
        self._pending = False
        self._frame_id = ""
        self.create_subscription(Imu, "/imu/data", self.on_imu, self.sensor_qos)
        self.create_timer(1.0 / self.values["rate_hz"], self.on_timer)

    def on_imu(self, msg: Imu) -> None:
        # Covariance element 0 = -1 is the sensor_msgs/Imu way to say "this field is not measured".
        for field in ("linear_acceleration", "angular_velocity"):
            if getattr(msg, f"{field}_covariance")[0] == -1.0:
                self.drops.drop("missing_imu_field", f"Imu.{field} is marked as not provided "
                                                     f"({field}_covariance[0] = -1)")
                return
        a, w = msg.linear_acceleration, msg.angular_velocity
        stamp_ns = stamp_to_ns(msg.header.stamp)
        try:
            stored = self.buffer.add(stamp_ns, (a.x, a.y, a.z), (w.x, w.y, w.z))
        except ImuSampleError as exc:
            self.drops.drop(exc.reason, f"Imu at {stamp_ns} ns: {exc}")
            return
        if not stored:
            self.drops.drop("duplicate_imu_stamp", f"Imu stamp {stamp_ns} ns was already received")
            return
        self.accepted += 1
        self._pending = True
        self._frame_id = msg.header.frame_id

    def on_timer(self) -> None:
        if not self._pending:
            return
        started = time.perf_counter()
        self._pending = False
        header = Header(stamp=ns_to_stamp(self.buffer.newest_ns), frame_id=self._frame_id)
        self.encode_and_publish(header, self.buffer.window(), started)


def main(args=None) -> int:
    return run(ImuEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
