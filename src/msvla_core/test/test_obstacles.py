"""Obstacle readings are placed in the base frame as the vehicle shield expects them."""
import math

import numpy as np
import pytest

from msvla_core.safety.obstacles import crossing_speeds, lidar_points_in_base, radar_targets_in_base

YAW_90 = [0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)]


def test_lidar_points_are_moved_by_the_mount_pose():
    out = lidar_points_in_base(np.array([[1.0, 0.0, 0.0], [0.0, 2.0, -1.0]]), [0.5, 0.0, 1.8, *YAW_90])
    np.testing.assert_allclose(out, [[0.5, 1.0, 1.8], [-1.5, 0.0, 0.8]], atol=1e-9)


def test_radar_targets_become_points_and_closing_speeds():
    points, closing = radar_targets_in_base([10.0, 5.0], [0.0, math.pi / 2], [-3.0, 2.0],
                                            [3.6, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(points, [[13.6, 0.0, 0.5], [3.6, 5.0, 0.5]], atol=1e-9)
    np.testing.assert_allclose(closing, [3.0, -2.0])  # approaching is positive


def test_non_finite_readings_pass_through_for_the_shield_to_count():
    points, closing = radar_targets_in_base([math.nan], [0.0], [1.0], [0, 0, 0, 0, 0, 0, 1])
    assert np.isnan(points[0, 0]) and closing[0] == -1.0


def test_mismatched_radar_fields_and_bad_poses_are_refused():
    with pytest.raises(ValueError, match="radar fields differ in length"):
        radar_targets_in_base([1.0, 2.0], [0.0], [0.0, 0.0], [0, 0, 0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="7 finite values"):
        lidar_points_in_base(np.zeros((1, 3)), [0, 0, 0, 0, 0, 1])


RADAR = [3.6, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0]


def radar_reading(targets_base, velocities, ego_speed, yaw_rate=0.0):
    """What the bumper radar measures of targets at base-frame (x, y) moving at (vx, vy) (odom axes
    aligned with base at this instant): range, azimuth, radial velocity (positive away)."""
    sensor = np.array(RADAR[:2])
    sensor_velocity = np.array([ego_speed, yaw_rate * sensor[0]])
    d = np.asarray(targets_base, float) - sensor
    u = d / np.linalg.norm(d, axis=1, keepdims=True)
    vr = np.einsum("ij,ij->i", np.asarray(velocities, float) - sensor_velocity, u)
    return np.linalg.norm(d, axis=1), np.arctan2(d[:, 1], d[:, 0]), vr


def lateral_of(targets, velocities, ego_speed, yaw_rate=0.0, noise=0.0, seed=0, curvature=0.0):
    r, az, vr = radar_reading(targets, velocities, ego_speed, yaw_rate)
    vr = vr + np.random.default_rng(seed).normal(0.0, noise, vr.shape) if noise else vr
    points, _ = radar_targets_in_base(r, az, vr, RADAR)
    return crossing_speeds(points, vr, RADAR, ego_speed, yaw_rate, max_crossing_mps=2.5,
                           min_crossing_mps=0.4, radial_noise_mps=0.05, curvature=curvature)


def test_a_pedestrian_crossing_ahead_is_read_with_its_lateral_speed():
    out = lateral_of([[20.0, 3.75], [15.0, -3.0]], [[0.0, -1.2], [0.0, 0.9]], ego_speed=8.0)
    np.testing.assert_allclose(out, [-1.2, 0.9], atol=1e-9)


def test_static_targets_are_static_also_in_a_turn_and_under_noise():
    targets = [[20.0, 3.75], [10.0, -2.5], [30.0, 6.0]]
    assert np.all(lateral_of(targets, np.zeros((3, 2)), ego_speed=8.0) == 0.0)
    assert np.all(lateral_of(targets, np.zeros((3, 2)), ego_speed=8.0, yaw_rate=0.3) == 0.0)  # lever arm
    noisy = np.concatenate([lateral_of(targets, np.zeros((3, 2)), 8.0, noise=0.05, seed=k) for k in range(200)])
    assert np.count_nonzero(noisy) <= 0.01 * noisy.size, f"{np.count_nonzero(noisy)} of {noisy.size} static read as moving"


def test_longitudinal_traffic_and_targets_straight_ahead_are_not_crossings():
    # an oncoming car in the next lane, a slower lead car ahead in a curve, a pedestrian dead ahead
    out = lateral_of([[30.0, 3.5], [25.0, 4.0], [20.0, 0.0]], [[-10.0, 0.0], [5.0, 0.0], [0.0, -1.2]], ego_speed=8.0)
    assert np.all(out == 0.0), out


def test_in_a_bend_a_crossing_is_read_across_the_road_and_traffic_along_it_is_not():
    """Right-hand bend of radius 43 m: a pedestrian 3.75 m left of the road, 24 m along it, walks
    across the road at 0.93 m/s; a lead car drives along the bend at 5 m/s. Read across the arc,
    the pedestrian is a -0.93 m/s crossing and the car none; read across base y (the straight
    path), the pedestrian's speed comes out wrong (it moves partly along x)."""
    k, station = -1.0 / 43.0, 24.0
    heading = k * station
    road = np.array([math.sin(k * station) / k, (1.0 - math.cos(k * station)) / k])
    tangent, normal = np.array([math.cos(heading), math.sin(heading)]), np.array([-math.sin(heading), math.cos(heading)])
    targets = [road + 3.75 * normal, road]
    velocities = [-0.93 * normal, 5.0 * tangent]
    ego_speed, yaw_rate = 8.0, 8.0 * k
    np.testing.assert_allclose(lateral_of(targets, velocities, ego_speed, yaw_rate, curvature=k), [-0.93, 0.0],
                               atol=0.02)
    straight = lateral_of(targets, velocities, ego_speed, yaw_rate)
    assert abs(straight[0] + 0.93) > 0.1, straight


def test_crossing_speed_inputs_must_agree_in_length():
    with pytest.raises(ValueError, match="radial_velocity_mps has 1 values for 2 points"):
        crossing_speeds(np.zeros((2, 3)), [0.0], RADAR, 1.0, 0.0, 2.5, 0.4, 0.05)
