"""Imperfections of a real RGB-D camera for the simulated one: depth noise that grows with range,
holes (dropout blobs and missing returns at depth discontinuities), RGB sensor noise, and a camera
that is not exactly where the last calibration put it between episodes.

Everything draws from a caller-provided numpy Generator, so a seed reproduces the same noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SensorNoise:
    depth_sigma_m: float = 0.002  # depth noise standard deviation at 1 m; scales with range squared
    hole_blobs: tuple[int, int] = (0, 4)  # number of elliptical dropout blobs per frame (inclusive)
    hole_radius_px: tuple[float, float] = (2.0, 7.0)  # blob half-axes at 128 px image width
    edge_hole_probability: float = 0.5  # chance a pixel on a > 2 cm depth step returns nothing
    rgb_sigma: float = 2.0  # RGB noise standard deviation in 0-255 units

    def __post_init__(self):
        if self.depth_sigma_m < 0 or self.rgb_sigma < 0:
            raise ValueError("depth_sigma_m and rgb_sigma must be >= 0")
        if not 0.0 <= self.edge_hole_probability <= 1.0:
            raise ValueError(f"edge_hole_probability must be in [0, 1], got {self.edge_hole_probability}")
        if self.hole_blobs[0] < 0 or self.hole_blobs[1] < self.hole_blobs[0]:
            raise ValueError(f"hole_blobs must be (min, max) with 0 <= min <= max, got {self.hole_blobs}")


@dataclass(frozen=True)
class CameraJitter:
    translation_m: float = 0.015  # per-axis standard deviation of the camera position offset
    rotation_deg: float = 1.5  # standard deviation of the rotation offset angle

    def __post_init__(self):
        if self.translation_m < 0 or self.rotation_deg < 0:
            raise ValueError("translation_m and rotation_deg must be >= 0")


def noisy_depth(depth_m: np.ndarray, rng: np.random.Generator, noise: SensorNoise) -> np.ndarray:
    """Depth with range-dependent noise and NaN holes (float32, metres)."""
    depth = np.asarray(depth_m, dtype=np.float32)
    out = depth + rng.standard_normal(depth.shape).astype(np.float32) * (
        noise.depth_sigma_m * depth * depth)
    h, w = depth.shape
    holes = np.zeros((h, w), np.uint8)
    scale = w / 128.0
    for _ in range(int(rng.integers(noise.hole_blobs[0], noise.hole_blobs[1] + 1))):
        centre = (int(rng.integers(w)), int(rng.integers(h)))
        axes = tuple(max(1, int(scale * rng.uniform(*noise.hole_radius_px))) for _ in range(2))
        cv2.ellipse(holes, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if noise.edge_hole_probability > 0:
        step = np.zeros((h, w), bool)
        step[:, 1:] |= np.abs(np.diff(depth, axis=1)) > 0.02
        step[1:, :] |= np.abs(np.diff(depth, axis=0)) > 0.02
        holes[step & (rng.random((h, w)) < noise.edge_hole_probability)] = 1
    out[holes.astype(bool)] = np.nan
    return out


def noisy_rgb(rgb: np.ndarray, rng: np.random.Generator, noise: SensorNoise) -> np.ndarray:
    if noise.rgb_sigma <= 0:
        return rgb
    noisy = rgb.astype(np.float32) + rng.standard_normal(rgb.shape).astype(np.float32) * noise.rgb_sigma
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def jitter_pose(pose: np.ndarray, rng: np.random.Generator, jitter: CameraJitter) -> np.ndarray:
    """The 4x4 camera pose moved by a random offset (translation in the base frame, rotation about
    a random axis through the camera), each clipped at three standard deviations."""
    out = np.array(pose, dtype=float)
    shift = np.clip(rng.standard_normal(3), -3, 3) * jitter.translation_m
    angle = math.radians(float(np.clip(rng.standard_normal(), -3, 3)) * jitter.rotation_deg)
    axis = rng.standard_normal(3)
    out[:3, :3] = _axis_angle(axis, angle) @ out[:3, :3]
    out[:3, 3] += shift
    return out
