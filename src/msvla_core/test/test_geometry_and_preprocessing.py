"""Geometry helpers and the preprocessing the encoder nodes and trainers share."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.geometry import (CameraModel, grasp_yaw_from_quaternion, matrix_to_quaternion, pose_to_matrix,
                                 quaternion_to_matrix, top_down_grasp_quaternion, transform_points)
from msvla_core.models import GraspModelConfig
from msvla_core.preprocessing import PreprocessingError, prepare_depth, prepare_rgb


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: sum(c * c for c in q) > 0.01))
def test_quaternion_matrix_round_trip(q):
    r = quaternion_to_matrix(q)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(r)), r, atol=1e-7)


@settings(max_examples=50, deadline=None)
@given(st.floats(-math.pi + 1e-3, math.pi - 1e-3))
def test_top_down_grasp_points_down_and_keeps_its_yaw(yaw):
    r = quaternion_to_matrix(top_down_grasp_quaternion(yaw))
    np.testing.assert_allclose(r[:, 2], [0, 0, -1], atol=1e-9)
    assert math.isclose(grasp_yaw_from_quaternion(top_down_grasp_quaternion(yaw)), yaw, abs_tol=1e-7)


def test_invalid_poses_and_cameras_are_refused():
    with pytest.raises(ValueError, match="7 finite values"):
        pose_to_matrix([0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="not a valid rotation"):
        pose_to_matrix([0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="fx, fy > 0"):
        CameraModel(0.0, 1.0, 1.0, 1.0, 10, 10)


def test_deprojected_plane_lands_where_the_camera_looks():
    cam = CameraModel(100.0, 100.0, 31.5, 23.5, 64, 48)
    pts = cam.deproject(np.full((48, 64), 2.0, np.float32))
    np.testing.assert_allclose(pts[:, :, 2], 2.0)
    centre = pts[23:25, 31:33].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(centre, [0, 0, 2.0], atol=1e-6)
    np.testing.assert_allclose(pts[0, 0], [-31.5 / 100 * 2, -23.5 / 100 * 2, 2.0], rtol=1e-6)


def test_prepare_depth_geometry_matches_a_known_plane_and_fills_holes():
    cfg = GraspModelConfig()
    cam = CameraModel(120.0, 120.0, 63.5, 63.5, 128, 128)
    # camera 1 m above a table, looking straight down: optical z = -base z
    to_base = pose_to_matrix([0.5, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    depth = np.full((128, 128), 1.0, np.float32)
    depth[::3, ::3] = np.nan
    x, geometry = prepare_depth(depth, cam, to_base, cfg)
    assert x.shape == (2, 128, 128) and geometry.shape == (4, 32, 32)
    np.testing.assert_allclose(geometry[2], 0.0, atol=1e-5)  # the table plane z = 0
    assert np.all(geometry[3] >= 0.75) and np.all(np.isfinite(x))  # 1 pixel in 9 is a hole
    expected = transform_points(to_base, cam.deproject(np.ones((128, 128), np.float32)))
    np.testing.assert_allclose(geometry[0].mean(), expected[..., 0].mean(), atol=1e-3)


def test_prepare_depth_refuses_mostly_invalid_images_naming_the_problem():
    cfg = GraspModelConfig()
    cam = CameraModel(120.0, 120.0, 63.5, 63.5, 128, 128)
    with pytest.raises(PreprocessingError, match="100% of pixels are NaN"):
        prepare_depth(np.full((128, 128), np.nan, np.float32), cam, np.eye(4), cfg)
    with pytest.raises(PreprocessingError, match="CameraInfo says 128x128"):
        prepare_depth(np.ones((10, 10), np.float32), cam, np.eye(4), cfg)


def test_prepare_rgb_resizes_and_normalises():
    x = prepare_rgb(np.zeros((480, 640, 3), np.uint8), GraspModelConfig())
    assert x.shape == (3, 128, 128) and x.dtype == np.float32 and np.all(x < 0)
    with pytest.raises(PreprocessingError):
        prepare_rgb(np.zeros((10, 10), np.uint8), GraspModelConfig())
