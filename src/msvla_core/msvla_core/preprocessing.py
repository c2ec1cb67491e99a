"""Sensor preprocessing shared by the encoder nodes and the trainers (one source of truth).

Inputs are numpy arrays as produced by msvla_core.data (RGB uint8, depth float32 metres with NaN
holes); outputs are float32 arrays laid out for the encoders (channels first).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .geometry import CameraModel, pose_to_matrix, transform_points

if TYPE_CHECKING:  # models import this module; a runtime import would be circular
    from .models.config import GraspModelConfig

RGB_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
RGB_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class PreprocessingError(ValueError):
    """Raised when a sensor input cannot be used; the message names the problem."""


class ExtrinsicsError(PreprocessingError):
    """A camera pose that cannot be used; `field` is "translation" or "rotation"."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def extrinsics_matrix(translation, rotation, unit_tolerance: float = 1e-3) -> np.ndarray:
    """4x4 pose of the camera optical frame in the base frame from a translation (x, y, z) [m] and
    a quaternion (x, y, z, w). The quaternion must be unit length within `unit_tolerance` (a
    larger error means a corrupt or non-rotation message, not rounding) and is then normalised."""
    t = np.asarray(translation, dtype=np.float64)
    q = np.asarray(rotation, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ExtrinsicsError("translation", f"translation {t.tolist()} is not 3 values or has non-finite values; "
                                             f"3 finite values (x, y, z) are required")
    if q.shape != (4,) or not np.all(np.isfinite(q)):
        raise ExtrinsicsError("rotation", f"rotation {q.tolist()} is not 4 values or has non-finite values; "
                                          f"4 finite values (x, y, z, w) are required")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > unit_tolerance:
        raise ExtrinsicsError("rotation", f"rotation quaternion {q.tolist()} has norm {norm:.6g}; a unit "
                                          f"quaternion is required (tolerance {unit_tolerance:g})")
    return pose_to_matrix(np.concatenate([t, q / norm]))


def prepare_rgb(rgb: np.ndarray, config: GraspModelConfig) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, h, w) float32, resized to the model input and normalised."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise PreprocessingError(f"RGB image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    size = (config.image.width, config.image.height)
    if rgb.shape[1::-1] != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    x = (rgb.astype(np.float32) / 255.0 - RGB_MEAN) / RGB_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _normalised_fill(values: np.ndarray, valid: np.ndarray, kernel: int) -> np.ndarray:
    """Fill holes with the mean of valid neighbours (normalised convolution); keeps valid pixels.
    `values` is float32 and zero wherever `valid` is False (both callers mask it already)."""
    weights = cv2.blur(valid.view(np.uint8).astype(np.float32), (kernel, kernel))
    filled = cv2.blur(values, (kernel, kernel))
    np.divide(filled, weights, out=filled, where=weights > 1e-6)
    filled[weights <= 1e-6] = 0.0
    np.copyto(filled, values, where=valid)
    return filled


def prepare_depth(depth_m: np.ndarray, camera: CameraModel, camera_to_base: np.ndarray,
                  config: GraspModelConfig, max_invalid_fraction: float = 0.9):
    """Depth in metres -> (encoder input (2, h, w), geometry (4, fh, fw)).

    Encoder input: range-normalised depth with holes filled, and the validity mask.
    Geometry: per feature cell, the mean 3-D point of its valid pixels in the robot base frame
    (3 channels) and the fraction of valid pixels (1 channel); the grasp head reads positions
    from it, so the network only has to choose where to grasp, not regress metric coordinates.
    """
    if depth_m.ndim != 2:
        raise PreprocessingError(f"depth image must be 2-D, got shape {depth_m.shape}")
    if depth_m.shape != (camera.height, camera.width):
        raise PreprocessingError(
            f"depth image is {depth_m.shape[1]}x{depth_m.shape[0]} but CameraInfo says "
            f"{camera.width}x{camera.height}")
    lo, hi = config.depth_range.min_m, config.depth_range.max_m
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth_m) & (depth_m >= lo) & (depth_m <= hi)
    invalid_fraction = 1.0 - float(valid.mean())
    if invalid_fraction > max_invalid_fraction:
        raise PreprocessingError(
            f"depth data: {invalid_fraction:.0%} of pixels are NaN, inf or outside "
            f"[{lo}, {hi}] m (limit {max_invalid_fraction:.0%})")

    size = (config.image.width, config.image.height)
    depth = np.where(valid, depth_m, 0.0).astype(np.float32)
    filled = _normalised_fill(depth, valid, kernel=7)
    still_missing = ~valid & (filled <= 0)
    filled[still_missing] = hi
    norm = (np.clip(filled, lo, hi) - lo) / (hi - lo)
    encoder_input = np.stack([
        cv2.resize(norm, size, interpolation=cv2.INTER_AREA),
        cv2.resize(valid.astype(np.float32), size, interpolation=cv2.INTER_AREA),
    ])

    points = transform_points(camera_to_base, camera.deproject(depth))
    geometry = _cell_geometry(points, valid, config.feature_size)
    return encoder_input.astype(np.float32), geometry


def _cell_geometry(points: np.ndarray, valid: np.ndarray, feature_size: tuple[int, int]) -> np.ndarray:
    """Per-pixel base-frame points (H, W, 3) and validity -> (4, fh, fw): per feature cell the mean
    point of its valid pixels and their fraction (area-weighted, as the encoders downsample)."""
    fh, fw = feature_size
    weight = cv2.resize(valid.astype(np.float32), (fw, fh), interpolation=cv2.INTER_AREA)
    summed = cv2.resize(np.where(valid[..., None], points, 0.0).astype(np.float32), (fw, fh),
                        interpolation=cv2.INTER_AREA)
    mean_points = np.divide(summed, weight[..., None], out=np.zeros_like(summed),
                            where=weight[..., None] > 1e-6)
    geometry = np.concatenate([mean_points.transpose(2, 0, 1), weight[None]], axis=0)
    return geometry.astype(np.float32)


def plane_geometry(camera: CameraModel, camera_to_base: np.ndarray, config: GraspModelConfig,
                   plane_z: float = 0.0) -> np.ndarray:
    """Geometry (4, fh, fw) laid out as prepare_depth's, for a camera that sees only the plane
    z = plane_z of the base frame (the table): what an RGB-only graph can still localise with.

    Each pixel-centre ray is intersected with the plane; rays parallel to it, hitting it behind
    the camera, or at a z-depth outside the model's depth range (as prepare_depth would reject
    that return) are invalid. It depends on the camera and its pose only, so it is cached; the
    caller gets its own copy.
    """
    pose = np.asarray(camera_to_base, dtype=np.float64)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        raise PreprocessingError(f"camera_to_base must be a finite 4x4 transform, got shape {pose.shape}")
    plane_z = float(plane_z)
    if not np.isfinite(plane_z):
        raise PreprocessingError(f"plane_z must be finite, got {plane_z}")
    cached = _plane_geometry_cached(camera, tuple(pose.ravel().tolist()), tuple(config.feature_size),
                                    float(config.depth_range.min_m), float(config.depth_range.max_m), plane_z)
    return cached.copy()


@lru_cache(maxsize=32)
def _plane_geometry_cached(camera: CameraModel, pose_values: tuple[float, ...], feature_size: tuple[int, int],
                           min_m: float, max_m: float, plane_z: float) -> np.ndarray:
    pose = np.array(pose_values).reshape(4, 4)
    u = (np.arange(camera.width) - camera.cx) / camera.fx
    v = (np.arange(camera.height) - camera.cy) / camera.fy
    rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((1, 1))), axis=-1)  # optical z = 1
    directions = rays @ pose[:3, :3].T
    origin = pose[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = (plane_z - origin[2]) / directions[..., 2]  # z-depth in the optical frame
    valid = np.isfinite(depth) & (depth >= min_m) & (depth <= max_m)
    points = origin + np.where(valid, depth, 0.0)[..., None] * directions
    geometry = _cell_geometry(points, valid, feature_size)
    geometry.setflags(write=False)  # shared by every caller through the cache
    return geometry
