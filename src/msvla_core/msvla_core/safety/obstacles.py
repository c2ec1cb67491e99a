"""Obstacle sensor readings -> points in the vehicle base frame, as VehicleShield.on_obstacles takes them.

Non-finite readings are passed through (the shield counts and ignores them, per point), so a
sensor that sends only garbage is noticed rather than silently treated as an empty road.
"""
from __future__ import annotations

import numpy as np

from ..geometry import pose_to_matrix, transform_points
from .corridor import along_arc

# |sin(bearing)| below which a target counts as straight ahead: too little of a crossing motion
# shows in its radial velocity to estimate it (and it is in the corridor if it is in the way).
SIN_STRAIGHT_AHEAD = 0.05


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


def crossing_speeds(points_base: np.ndarray, radial_velocity_mps: np.ndarray, sensor_to_base,
                    ego_speed_mps: float, yaw_rate_radps: float, max_crossing_mps: float,
                    min_crossing_mps: float, radial_noise_mps: float, curvature: float = 0.0) -> np.ndarray:
    """(N,) speed of each radar target across the path of `curvature` (1/m, positive left; 0: the
    straight path, base frame y), positive towards the path's left, under the crossing hypothesis;
    0 where it does not hold. "Across" is the path's normal where the target stands beside it: in
    a bend a pedestrian crossing the road moves along that normal, not along base frame y.

    A radar measures only the radial part of a target's velocity. With the sensor's own velocity
    (forward speed plus yaw rate times its lever arm) added back, what remains is the target's own
    radial velocity; read as motion across the vehicle's path (a pedestrian or cyclist crossing,
    the case a static-world corridor misses until it is too late), that gives its lateral speed.
    The hypothesis is dropped, and the target taken as static or as longitudinal traffic (which
    the closing speed already covers), when the own radial velocity is within 3 noise sigmas of
    zero, when the lateral speed would be below `min_crossing_mps`, when the target is nearly
    straight ahead (no lateral component to measure), or when no crossing faster than
    `max_crossing_mps` could explain it (an oncoming or lead vehicle)."""
    pts = np.asarray(points_base, dtype=np.float64).reshape(-1, 3)
    vr = np.asarray(radial_velocity_mps, dtype=np.float64).ravel()
    if vr.shape[0] != pts.shape[0]:
        raise ValueError(f"radial_velocity_mps has {vr.shape[0]} values for {pts.shape[0]} points")
    sensor = pose_to_matrix(sensor_to_base)[:2, 3]
    d = pts[:, :2] - sensor
    with np.errstate(invalid="ignore", divide="ignore"):
        u = d / np.linalg.norm(d, axis=1, keepdims=True)
        sensor_velocity = np.array([ego_speed_mps - yaw_rate_radps * sensor[1], yaw_rate_radps * sensor[0]])
        own_radial = vr + u @ sensor_velocity
        station, _ = along_arc(pts[:, 0], pts[:, 1], curvature)
        heading = np.clip(curvature * station, -0.5 * np.pi, 0.5 * np.pi)
        across = -u[:, 0] * np.sin(heading) + u[:, 1] * np.cos(heading)   # u . path normal
        lateral = own_radial / across
        crossing = (np.abs(across) >= SIN_STRAIGHT_AHEAD) & (np.abs(own_radial) > 3.0 * radial_noise_mps) \
            & (np.abs(lateral) >= min_crossing_mps) & (np.abs(lateral) <= max_crossing_mps)
    return np.where(crossing & np.isfinite(lateral), lateral, 0.0)
