"""A time-ordered IMU sample buffer that cuts fixed-duration windows for the IMU encoders.

The imu_encoder node and offline trainers both feed samples through `ImuWindow`, so a feature
computed live and one computed from a recording see the same window. A window is the raw input of
the IMU encoders' `preprocess`: float64 (T, 7) = [ax, ay, az (m/s^2, with gravity), wx, wy, wz
(rad/s), time offset (s)], oldest first, where the offset of each sample is relative to the
window end (so it is <= 0 and the newest sample at the end has offset 0).
"""
from __future__ import annotations

from collections import deque
from itertools import islice

import numpy as np

AXES = "xyz"


class ImuSampleError(ValueError):
    """A sample the buffer refuses; `reason` is a short stable key for drop counters."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def imu_vectors(msg) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(linear acceleration, angular velocity) of a sensor_msgs/Imu (rclpy or rosbags message)."""
    a, w = msg.linear_acceleration, msg.angular_velocity
    return (a.x, a.y, a.z), (w.x, w.y, w.z)


def _vector(values, field: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ImuSampleError("malformed_imu", f"{field}: expected 3 numbers ({exc})") from None
    if arr.shape != (3,):
        raise ImuSampleError("malformed_imu", f"{field}: expected 3 numbers, got {arr.size}")
    bad = [f"{field}.{AXES[i]}={arr[i]}" for i in np.flatnonzero(~np.isfinite(arr))]
    if bad:
        raise ImuSampleError("non_finite_imu", f"non-finite value: {', '.join(bad)}")
    return arr


class ImuWindow:
    """Keeps recent IMU samples in stamp order and returns the samples of a time window.

    `window_s` is the window duration; `max_samples` bounds memory (a driver with a wrong rate or
    bogus stamps cannot grow the buffer) and, when reached, shortens the window to the newest
    `max_samples` samples. `history_s` (default `window_s`) is how far behind the newest sample
    windows may still end: trainers that ask for windows ending at an older camera stamp raise it.
    """

    def __init__(self, window_s: float, max_samples: int, history_s: float | None = None):
        if not window_s > 0 or not np.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if int(max_samples) != max_samples or max_samples < 1:
            raise ValueError(f"max_samples must be an integer >= 1, got {max_samples!r}")
        history_s = window_s if history_s is None else history_s
        if not history_s >= window_s or not np.isfinite(history_s):
            raise ValueError(f"history_s={history_s!r} must be finite and >= window_s={window_s}")
        self.window_ns = int(round(window_s * 1e9))
        self.keep_ns = int(round(history_s * 1e9))
        self.max_samples = int(max_samples)
        self._stamps: deque[int] = deque(maxlen=self.max_samples)
        self._values: deque[np.ndarray] = deque(maxlen=self.max_samples)

    def __len__(self) -> int:
        return len(self._stamps)

    @property
    def newest_ns(self) -> int | None:
        return self._stamps[-1] if self._stamps else None

    def add(self, stamp_ns: int, accel, gyro) -> bool:
        """Store one sample; returns True when stored.

        Returns False for a sample whose stamp equals the newest one (a redelivered message:
        harmless, nothing is stored). Raises ImuSampleError with reason "malformed_imu" (not
        three numbers per vector), "non_finite_imu" (names the field, e.g. angular_velocity.y)
        or "out_of_order_imu" (older than the newest stored sample).
        """
        values = np.concatenate([_vector(accel, "linear_acceleration"),
                                 _vector(gyro, "angular_velocity")])
        stamp_ns = int(stamp_ns)
        newest = self.newest_ns
        if newest is not None:
            if stamp_ns == newest:
                return False
            if stamp_ns < newest:
                raise ImuSampleError("out_of_order_imu", f"stamp {stamp_ns} ns is {(newest - stamp_ns) / 1e6:.3f} "
                                                         f"ms older than the newest sample ({newest} ns)")
        self._stamps.append(stamp_ns)
        self._values.append(values)
        # The newest sample is never pruned, so the ordering check above always has a reference.
        oldest_kept = stamp_ns - self.keep_ns
        while self._stamps[0] < oldest_kept:
            self._stamps.popleft()
            self._values.popleft()
        return True

    def window(self, end_ns: int | None = None) -> np.ndarray:
        """Samples with end_ns - window_s <= stamp <= end_ns (end_ns defaults to the newest stamp)
        as a float64 (T, 7) array, oldest first; T may be 0 (nothing in that interval)."""
        if not self._stamps:
            return np.empty((0, 7))
        end = self._stamps[-1] if end_ns is None else int(end_ns)
        stamps = np.fromiter(self._stamps, dtype=np.int64, count=len(self._stamps))
        lo = int(np.searchsorted(stamps, end - self.window_ns, side="left"))
        hi = int(np.searchsorted(stamps, end, side="right"))
        out = np.empty((hi - lo, 7))
        if hi > lo:
            out[:, :6] = np.stack(list(islice(self._values, lo, hi)))
            # Integer nanoseconds first: float64 seconds since the epoch would lose microseconds.
            out[:, 6] = (stamps[lo:hi] - end) / 1e9
        return out

    def clear(self) -> None:
        self._stamps.clear()
        self._values.clear()


class AlignedImuWindows:
    """Cuts IMU windows that end exactly at reference stamps (the camera frames fusion is driven by).

    A window stamped with the camera's stamp is an exact match for the synchroniser: the fused set
    needs no IMU feature from before the frame (which would make the set older) and waits for none
    from after it (which would delay it). A window ending at reference stamp t holds the samples with
    t - window_s <= stamp <= t and is cut as soon as a sample at or after t shows that no more
    samples up to t will come. References may arrive before or after their samples; both the
    imu_encoder node and the offline trainers feed them through this class, so live and recorded
    windows are the same.
    """

    def __init__(self, window_s: float, max_samples: int, max_pending: int = 20, history_s: float = 1.0):
        if int(max_pending) != max_pending or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        # References up to history_s behind the newest sample can still be served.
        self.buffer = ImuWindow(window_s, max_samples, history_s=max(history_s, window_s))
        self.max_pending = int(max_pending)
        self._pending: deque[int] = deque()
        self._last_reference: int | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add_sample(self, stamp_ns: int, accel, gyro) -> tuple[bool, list[tuple[int, np.ndarray]],
                                                             list[tuple[int, str]]]:
        """Store one sample (ImuWindow.add: False for a redelivered stamp, ImuSampleError for a
        refused one); returns (stored, [(reference stamp, window)] of the references it completes,
        [(stamp, reason)] of the references it completes without a sample: "empty_imu_window")."""
        stored = self.buffer.add(stamp_ns, accel, gyro)
        return (stored, *self._cut(self.buffer.newest_ns)) if stored else (False, [], [])

    def add_reference(self, stamp_ns: int) -> tuple[list[tuple[int, np.ndarray]], list[tuple[int, str]]]:
        """Queue a reference stamp; returns (windows now complete, [(stamp, reason)] of refused
        references). Reasons: "duplicate_reference", "out_of_order_reference", "reference_too_old"
        (before the kept history), "pending_overflow" (the IMU has been silent for max_pending
        references: the oldest is given up), "empty_imu_window" (no sample in its window)."""
        stamp_ns = int(stamp_ns)
        last = self._last_reference
        if last is not None and stamp_ns <= last:
            return [], [(stamp_ns, "duplicate_reference" if stamp_ns == last else "out_of_order_reference")]
        self._last_reference = stamp_ns
        newest = self.buffer.newest_ns
        if newest is not None and stamp_ns < newest - self.buffer.keep_ns + self.buffer.window_ns:
            return [], [(stamp_ns, "reference_too_old")]
        refused = []
        self._pending.append(stamp_ns)
        if len(self._pending) > self.max_pending:
            refused.append((self._pending.popleft(), "pending_overflow"))
        if newest is None:
            return [], refused
        windows, empty = self._cut(newest)
        return windows, refused + empty

    def _cut(self, newest_ns: int) -> tuple[list[tuple[int, np.ndarray]], list[tuple[int, str]]]:
        windows, empty = [], []
        while self._pending and self._pending[0] <= newest_ns:
            stamp = self._pending.popleft()
            window = self.buffer.window(stamp)
            if len(window):
                windows.append((stamp, window))
            else:
                empty.append((stamp, "empty_imu_window"))
        return windows, empty

    def clear(self) -> None:
        self.buffer.clear()
        self._pending.clear()
        self._last_reference = None
