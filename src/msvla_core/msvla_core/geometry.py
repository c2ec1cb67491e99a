"""Camera models and rigid transforms (REP-103: metres, radians, right-handed frames)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of a rectified image in its optical frame (+z forward, +x right, +y down)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values) or self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"camera intrinsics must be finite with fx, fy > 0, got {values}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_k(cls, k, width: int, height: int) -> "CameraModel":
        """Build from a row-major 3x3 K matrix (sensor_msgs/CameraInfo.k)."""
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=int(width), height=int(height))

    def scaled(self, width: int, height: int) -> "CameraModel":
        """The same camera seen at another resolution (pixel centres kept aligned)."""
        sx, sy = width / self.width, height / self.height
        return CameraModel(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5,
                           (self.cy + 0.5) * sy - 0.5, width, height)

    def deproject(self, depth_m: np.ndarray) -> np.ndarray:
        """Per-pixel 3-D points (H, W, 3) in the optical frame from a z-depth image in metres."""
        h, w = depth_m.shape
        if (w, h) != (self.width, self.height):
            raise ValueError(f"depth image is {w}x{h} but the camera model is {self.width}x{self.height}")
        u = np.arange(w, dtype=np.float32)[None, :]
        v = np.arange(h, dtype=np.float32)[:, None]
        z = depth_m.astype(np.float32)
        x = (u - self.cx) / self.fx * z
        y = (v - self.cy) / self.fy * z
        return np.stack([x, y, z], axis=-1)


def quaternion_to_matrix(q) -> np.ndarray:
    """Rotation matrix from a quaternion (x, y, z, w); the quaternion need not be unit length."""
    x, y, z, w = (float(c) for c in q)
    n = x * x + y * y + z * z + w * w
    if not math.isfinite(n) or n < 1e-12:
        raise ValueError(f"quaternion {tuple(q)} is not a valid rotation")
    s = 2.0 / n
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


def matrix_to_quaternion(r: np.ndarray) -> np.ndarray:
    """Quaternion (x, y, z, w) with w >= 0 from a rotation matrix."""
    r = np.asarray(r, dtype=np.float64)
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-12))
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (r[j, i] + r[i, j]) / s
        q[k] = (r[k, i] + r[i, k]) / s
    q = np.array(q)
    return q if q[3] >= 0 else -q


def pose_to_matrix(xyz_quat) -> np.ndarray:
    """4x4 homogeneous transform from [x, y, z, qx, qy, qz, qw]."""
    values = np.asarray(xyz_quat, dtype=np.float64)
    if values.shape != (7,) or not np.all(np.isfinite(values)):
        raise ValueError(f"a pose needs 7 finite values [x, y, z, qx, qy, qz, qw], got {list(values)}")
    t = np.eye(4)
    t[:3, :3] = quaternion_to_matrix(values[3:])
    t[:3, 3] = values[:3]
    return t


def transform_points(t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (..., 3) points."""
    return points @ t[:3, :3].T.astype(points.dtype) + t[:3, 3].astype(points.dtype)


def top_down_grasp_quaternion(yaw: float) -> np.ndarray:
    """Grasp frame whose approach axis (+z) points down (-z of the base) and whose closing axis
    (+y) is rotated by `yaw` about the base +z axis."""
    c, s = math.cos(yaw), math.sin(yaw)
    # Columns: grasp x, y, z axes expressed in the base frame.
    r = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag([1.0, -1.0, -1.0])
    return matrix_to_quaternion(r)


def grasp_yaw_from_quaternion(q) -> float:
    """Inverse of top_down_grasp_quaternion for any orientation: yaw of the grasp x axis."""
    r = quaternion_to_matrix(q)
    return math.atan2(r[1, 0], r[0, 0])


def gripper_outline(position, quaternion, width: float, finger_m: float = 0.05, stem_m: float = 0.06) -> np.ndarray:
    """(8, 3) points in the pose's frame drawing a parallel gripper at a grasp pose as 4 line
    segments (pairs of points): the two fingers along the approach axis (+z of the grasp frame)
    ending at the grasp point, the palm joining them across the closing axis (+y), and a stem
    behind the palm. For visualisation (markers)."""
    r = quaternion_to_matrix(quaternion)
    p = np.asarray(position, dtype=float)
    y, z = r[:, 1] * (width / 2.0), r[:, 2]
    palm = p - z * finger_m
    return np.array([p + y, palm + y, p - y, palm - y, palm + y, palm - y, palm, palm - z * stem_m])
