"""Obstacle readings are placed in the base frame as the vehicle shield expects them."""
import math

import numpy as np
import pytest

from msvla_core.safety.obstacles import lidar_points_in_base, radar_targets_in_base

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
