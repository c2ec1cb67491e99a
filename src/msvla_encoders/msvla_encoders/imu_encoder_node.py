"""imu_encoder: sensor_msgs/Imu stream -> windowed SensorFeature ("imu").

IMUs publish far faster (hundreds of Hz) than the rest of the graph consumes features, so each
message only goes into a time-ordered buffer (msvla_core.data.imu_window, shared with the
trainers) and the node encodes windows of the last `window_s` seconds - (T, 7) [accel m/s^2, gyro
rad/s, time offset s relative to the window end]. Orientation is not used. When a window is cut:
- `align_to_topic` set (a CameraInfo topic, normally the fusion's reference camera): one window per
  camera frame, ending at and stamped with the frame's stamp, encoded as soon as the IMU sample at
  or after that stamp arrives. The fused set then gets an IMU feature of exactly its own time.
- otherwise: a timer at `rate_hz` encodes the window ending at the newest sample, stamped with it,
  whenever new samples arrived since the previous feature.
"""
from __future__ import annotations

import time

from rclpy.qos import HistoryPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, Imu
from std_msgs.msg import Header

from msvla_core.data.imu_window import AlignedImuWindows, ImuSampleError, ImuWindow, imu_vectors
from msvla_core.params import ParamSpec
from msvla_ros.main import run
from msvla_ros.messages import ns_to_stamp, stamp_to_ns
from msvla_ros.subscriptions import take_queued

from .feature_node import FeatureEncoderNode

REFERENCE_QUEUE_DEPTH = 5  # camera frames queued for align_to_topic

PARAMS = [
    ParamSpec("align_to_topic", "", "CameraInfo topic of the camera that drives fusion: one window "
              "per frame, ending at the frame's stamp. Empty: windows at rate_hz ending at the newest "
              "sample."),
    ParamSpec("rate_hz", 20.0, "Rate at which windowed IMU features are published (only when new "
              "samples arrived) when align_to_topic is empty.", unit="Hz", min=1.0, max=200.0),
    ParamSpec("window_s", 0.2, "Duration of IMU history in each feature.", unit="s", min=0.005, max=10.0),
    ParamSpec("max_samples", 2000, "Upper bound on buffered samples (memory bound if stamps or "
              "rates are wrong); with fewer samples than window_s * rate the window is shorter.",
              min=1, max=100000),
]


class ImuEncoderNode(FeatureEncoderNode):
    modality = "imu"
    extra_params = tuple(PARAMS)
    default_queue_depth = 100  # covers bursts of IMU messages while the node encodes a window

    def __init__(self, **node_kwargs):
        super().__init__("imu_encoder", **node_kwargs)
        window_s, max_samples = self.values["window_s"], self.values["max_samples"]
        self.aligned: AlignedImuWindows | None = None
        if self.values["align_to_topic"]:
            self.aligned = AlignedImuWindows(window_s, max_samples)
            self.buffer = self.aligned.buffer
            # Frames older than the kept IMU history (1 s) get no window, so a deep frame queue only
            # replays refusals after a stall: with the IMU's queue_depth (100 = 10 s of frames) the
            # vehicle graph spent its first seconds draining them and fused sets lacked the IMU.
            frames_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=REFERENCE_QUEUE_DEPTH,
                                    durability=self.sensor_qos.durability, reliability=self.sensor_qos.reliability)
            self.create_subscription(CameraInfo, self.values["align_to_topic"], self.on_reference, frames_qos)
        else:
            self.buffer = ImuWindow(window_s, max_samples)
            self.create_timer(1.0 / self.values["rate_hz"], self.on_timer)
        self.accepted = 0
        self._pending = False
        self._frame_id = ""
        self.imu_sub = self.create_subscription(Imu, "/imu/data", self.on_imu, self.sensor_qos)

    def on_imu(self, msg: Imu) -> None:
        # One message per executor cycle cannot keep up with a 100 Hz IMU in a busy process: take
        # what is already queued now (msvla_ros.subscriptions).
        self._add_sample(msg)
        for queued in take_queued(self.imu_sub, self.values["queue_depth"]):
            self._add_sample(queued)

    def _add_sample(self, msg: Imu) -> None:
        # Covariance element 0 = -1 is the sensor_msgs/Imu way to say "this field is not measured".
        for field in ("linear_acceleration", "angular_velocity"):
            if getattr(msg, f"{field}_covariance")[0] == -1.0:
                self.drops.drop("missing_imu_field", f"Imu.{field} is marked as not provided "
                                                     f"({field}_covariance[0] = -1)")
                return
        started = time.perf_counter()
        stamp_ns = stamp_to_ns(msg.header.stamp)
        windows, refused = [], []
        try:
            if self.aligned is not None:
                stored, windows, refused = self.aligned.add_sample(stamp_ns, *imu_vectors(msg))
            else:
                stored = self.buffer.add(stamp_ns, *imu_vectors(msg))
        except ImuSampleError as exc:
            self.drops.drop(exc.reason, f"Imu at {stamp_ns} ns: {exc}")
            return
        if not stored:
            self.drops.drop("duplicate_imu_stamp", f"Imu stamp {stamp_ns} ns was already received")
            return
        self.accepted += 1
        self._pending = True
        self._frame_id = msg.header.frame_id
        self._encode_windows(windows, refused, started)

    def on_reference(self, msg: CameraInfo) -> None:
        started = time.perf_counter()
        self._encode_windows(*self.aligned.add_reference(stamp_to_ns(msg.header.stamp)), started)

    def _encode_windows(self, windows, refused, started: float) -> None:
        for stamp_ns, reason in refused:
            self.drops.drop(reason, f"{self.values['align_to_topic']} frame at {stamp_ns} ns gets no IMU "
                                    f"window ({reason.replace('_', ' ')}; newest IMU sample at "
                                    f"{self.buffer.newest_ns} ns, window {self.values['window_s']} s)")
        for stamp_ns, window in windows:
            header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=self._frame_id)
            self.encode_and_publish(header, window, started)

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
