"""Pinhole camera helpers for the simulated tabletop RGB-D camera.

Conventions (REP-103 / REP-105):
  * the base frame is ``panda_link0`` (the robot base, which is also the
    simulator's world origin);
  * the camera pose is given for the *optical* frame: +z forward along the
    optical axis, +x to the right of the image, +y down the image;
  * pixel coordinates follow the OpenCV / ROS ``CameraInfo`` convention:
    integer (u, v) is the centre of column u / row v, row 0 is the top row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence, Tuple

import numpy as np

from msvla_core.geometry import CameraModel, matrix_to_quaternion, pose_to_matrix

BASE_FRAME = "panda_link0"
CAMERA_OPTICAL_FRAME = "tabletop_camera_optical_frame"

# Flips the optical frame (+z forward, +y down) into the OpenGL camera frame
# (-z forward, +y up) used by the renderer; it is its own inverse.
_OPTICAL_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])


@dataclass(frozen=True)
class CameraSpec:
    """Where the fixed scene camera sits and how it images the scene."""

    eye: Tuple[float, float, float] = (0.95, 0.0, 0.75)
    target: Tuple[float, float, float] = (0.5, 0.0, 0.0)
    up: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_y_deg: float = 42.0
    near: float = 0.1
    far: float = 2.0
    frame_id: str = CAMERA_OPTICAL_FRAME


def look_at_pose(eye: Sequence[float], target: Sequence[float],
                 up: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 pose of an optical frame at ``eye`` whose +z points at ``target``."""
    eye = np.asarray(eye, dtype=float)
    forward = np.asarray(target, dtype=float) - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("camera eye and target coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=float))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera up vector is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0] = right
    pose[:3, 1] = down
    pose[:3, 2] = forward
    pose[:3, 3] = eye
    return pose


@dataclass
class RenderCamera:
    """The simulator's camera: pinhole intrinsics, optical-frame pose in the base frame, and the
    OpenGL matrices the renderer needs. `intrinsics` gives the msvla_core.geometry.CameraModel
    that the encoder nodes build from CameraInfo."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    near: float = 0.1
    far: float = 2.0
    frame_id: str = CAMERA_OPTICAL_FRAME
    parent_frame_id: str = BASE_FRAME

    @classmethod
    def from_spec(cls, spec: CameraSpec, width: int, height: int) -> "RenderCamera":
        focal = 0.5 * height / math.tan(0.5 * math.radians(spec.fov_y_deg))
        return cls(fx=focal, fy=focal,
                   cx=0.5 * (width - 1), cy=0.5 * (height - 1),
                   width=int(width), height=int(height),
                   pose=look_at_pose(spec.eye, spec.target, spec.up),
                   near=float(spec.near), far=float(spec.far),
                   frame_id=spec.frame_id)

    @property
    def intrinsics(self) -> CameraModel:
        return CameraModel(self.fx, self.fy, self.cx, self.cy, self.width, self.height)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx],
                         [0.0, self.fy, self.cy],
                         [0.0, 0.0, 1.0]])

    @property
    def position(self) -> np.ndarray:
        return self.pose[:3, 3].copy()

    @property
    def quaternion_xyzw(self) -> Tuple[float, float, float, float]:
        return tuple(float(c) for c in matrix_to_quaternion(self.pose[:3, :3]))

    def gl_view_matrix(self) -> list:
        """Column-major 4x4 view matrix for the OpenGL-style renderer."""
        view = np.linalg.inv(self.pose @ _OPTICAL_TO_GL)
        return [float(v) for v in view.flatten(order="F")]

    def gl_projection_matrix(self) -> list:
        """Column-major 4x4 projection matrix matching fx, fy, cx, cy."""
        w, h, n, f = self.width, self.height, self.near, self.far
        proj = np.zeros((4, 4))
        proj[0, 0] = 2.0 * self.fx / w
        proj[1, 1] = 2.0 * self.fy / h
        # Principal-point terms. PyBullet's TinyRenderer samples column u at the
        # continuous screen coordinate u (not u + 0.5) and, after flipping the
        # image upside down, row v at v + 1 from the top edge; these offsets make
        # its pixel grid agree with the OpenCV convention used by fx, fy, cx, cy
        # (checked by rasterising markers at known positions, see the tests).
        proj[0, 2] = 1.0 - 2.0 * self.cx / w
        proj[1, 2] = 2.0 * (self.cy + 1.0) / h - 1.0
        proj[2, 2] = -(f + n) / (f - n)
        proj[2, 3] = -2.0 * f * n / (f - n)
        proj[3, 2] = -1.0
        return [float(v) for v in proj.flatten(order="F")]

    def linearize_depth(self, buffer: np.ndarray) -> np.ndarray:
        """Non-linear [0, 1] depth buffer -> z-depth in metres (float32)."""
        d = np.asarray(buffer, dtype=np.float64)
        n, f = self.near, self.far
        return (f * n / (f - (f - n) * d)).astype(np.float32)

    def project(self, points_base: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Base-frame points (N, 3) -> pixel coordinates (N, 2) and z-depth (N,)."""
        pts = np.atleast_2d(np.asarray(points_base, dtype=float))
        inv = np.linalg.inv(self.pose)
        cam = pts @ inv[:3, :3].T + inv[:3, 3]
        z = cam[:, 2]
        u = self.fx * cam[:, 0] / z + self.cx
        v = self.fy * cam[:, 1] / z + self.cy
        return np.stack([u, v], axis=1), z

    def deproject(self, u, v, depth) -> np.ndarray:
        """Pixel coordinates and z-depth -> base-frame points (N, 3)."""
        u = np.atleast_1d(np.asarray(u, dtype=float))
        v = np.atleast_1d(np.asarray(v, dtype=float))
        z = np.atleast_1d(np.asarray(depth, dtype=float))
        cam = np.stack([(u - self.cx) * z / self.fx,
                        (v - self.cy) * z / self.fy,
                        z], axis=1)
        return cam @ self.pose[:3, :3].T + self.pose[:3, 3]

    def point_cloud(self, depth: np.ndarray, stride: int = 1) -> np.ndarray:
        """Base-frame points (H', W', 3) for every ``stride``-th pixel of a depth image."""
        depth = np.asarray(depth, dtype=float)[::stride, ::stride]
        vs, us = np.mgrid[0:self.height:stride, 0:self.width:stride]
        pts = self.deproject(us.ravel(), vs.ravel(), depth.ravel())
        return pts.reshape(depth.shape + (3,))

    def to_dict(self) -> dict:
        qx, qy, qz, qw = self.quaternion_xyzw
        return {
            "frame_id": self.frame_id,
            "parent_frame_id": self.parent_frame_id,
            "width": int(self.width),
            "height": int(self.height),
            "fx": float(self.fx),
            "fy": float(self.fy),
            "cx": float(self.cx),
            "cy": float(self.cy),
            "K": [[float(x) for x in row] for row in self.K],
            "near": float(self.near),
            "far": float(self.far),
            "depth": "z-depth along the optical axis, metres",
            "pose": [[float(x) for x in row] for row in self.pose],
            "position": [float(x) for x in self.pose[:3, 3]],
            "orientation_xyzw": [qx, qy, qz, qw],
        }


def camera_spec_from_pose(pose: list[float]) -> CameraSpec:
    """The camera placed at a calibration pose [x, y, z, qx, qy, qz, qw] of its optical frame."""
    t = pose_to_matrix(pose)
    eye = t[:3, 3]
    return CameraSpec(eye=tuple(eye), target=tuple(eye + t[:3, 2]), up=tuple(-t[:3, 1]))
