"""Obstacle sensor readings -> points in the vehicle base frame, as VehicleShield.on_obstacles takes them.

Non-finite readings are passed through (the shield counts and ignores them, per point), so a
sensor that sends only garbage is noticed rather than silently treated as an empty road.
"""
from __future__ import annotations

import numpy as np

from ..geometry import pose_to_matrix, transform_points


def lidar_points_in_base(xyz: np.ndarray, sensor_to_base) -> np.ndarray:
    """(N, 3) LiDAR points in the sensor frame -> (N, 3) in the base frame (LiDAR sees a static world:
    no closing speeds)."""
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    return transform_points(pose_to_matrix(sensor_to_base), xyz)


def radar_targets_in_base(range_m: np.ndarray, azimuth_rad: np.ndarray, radial_velocity_mps: np.ndarray,
                          sensor_to_base) -> tuple[np.ndarray, np.ndarray]:
    """Radar detections (range, azimuth counter-clockwise from the sensor's +x, radial velocity
    positive away) -> (N, 3) points in the base frame at the sensor's height, and (N,) closing
    speeds (positive = approaching). A 2-D radar measures no elevation, so each target is placed in
    the sensor's horizontal plane."""
    r = np.asarray(range_m, dtype=np.float64).ravel()
    az = np.asarray(azimuth_rad, dtype=np.float64).ravel()
    vr = np.asarray(radial_velocity_mps, dtype=np.float64).ravel()
    if not r.shape == az.shape == vr.shape:
        raise ValueError(f"radar fields differ in length: range {r.shape}, azimuth {az.shape}, "
                         f"radial_velocity {vr.shape}")
    local = np.stack([r * np.cos(az), r * np.sin(az), np.zeros_like(r)], axis=1)
    return transform_points(pose_to_matrix(sensor_to_base), local), -vr
