"""RGB-only grasping: table-plane geometry from the camera pose instead of depth.

plane_geometry must equal what prepare_depth computes from a depth image of the bare table, so that
the grasp head reads positions the same way with or without a depth camera; the shipped RGB-D
checkpoint must be unaffected.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

from msvla_core.geometry import CameraModel, pose_to_matrix, transform_points
from msvla_core.models import GraspModelConfig, GraspVLA
from msvla_core.models.checkpoint import load_pretrained
from msvla_core.models.fusion import accepted_feature_shapes
from msvla_core.models.language import SentenceEncoder
from msvla_core.preprocessing import (ExtrinsicsError, PreprocessingError, extrinsics_matrix, plane_geometry,
                                      prepare_depth, prepare_rgb)

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "franka_rgbd"
CALIBRATION = [0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751]  # config/franka/calibration.yaml
CAMERA = CameraModel(fx=140.0, fy=140.0, cx=79.5, cy=59.5, width=160, height=120)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)


def look_at(eye, target) -> np.ndarray:
    """Optical-frame pose (+z forward, +y down) at `eye` looking at `target`, base +z up."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    pose[:3, 3] = eye
    return pose


def render_plane_depth(camera: CameraModel, pose: np.ndarray, plane_z: float) -> np.ndarray:
    """z-depth image (float32, NaN where the ray misses) of the plane z = plane_z, ray by ray."""
    depth = np.full((camera.height, camera.width), np.nan, np.float32)
    for v in range(camera.height):
        for u in range(camera.width):
            ray = pose[:3, :3] @ [(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, 1.0]
            if abs(ray[2]) > 1e-12:
                s = (plane_z - pose[2, 3]) / ray[2]
                if s > 0:
                    depth[v, u] = s
    return depth


@pytest.mark.parametrize("pose, plane_z", [
    (pose_to_matrix(CALIBRATION), 0.0),  # the tabletop camera of the Franka graph
    (pose_to_matrix(CALIBRATION), 0.12),  # a raised table
    (look_at([0.0, -0.3, 0.6], [2.5, 0.4, 0.45]), 0.0),  # sees the horizon: sky and far table invalid
])
def test_plane_geometry_matches_depth_geometry_of_a_flat_table(pose, plane_z):
    config = GraspModelConfig()
    depth = render_plane_depth(CAMERA, pose, plane_z)
    _, from_depth = prepare_depth(depth, CAMERA, pose, config)
    from_plane = plane_geometry(CAMERA, pose, config, plane_z)
    assert from_plane.shape == (4, *config.feature_size) and from_plane.dtype == np.float32
    np.testing.assert_allclose(from_plane[3], from_depth[3], atol=1e-5)  # same valid fraction per cell
    valid = from_depth[3] > 1e-6
    assert valid.any()
    assert np.abs(from_plane[:3, valid] - from_depth[:3, valid]).max() < 1e-3  # within 1 mm
    np.testing.assert_allclose(from_plane[2, valid], plane_z, atol=1e-5)
    assert np.all(from_plane[:3, ~valid] == 0.0)


def test_rays_that_miss_the_plane_or_exceed_the_depth_range_are_invalid():
    config = GraspModelConfig()
    horizon = look_at([0.0, 0.0, 0.5], [3.0, 0.0, 0.5])  # optical axis parallel to the table
    g = plane_geometry(CAMERA, horizon, config)
    fh = config.feature_size[0]
    assert np.all(g[3, : fh // 2 - 1] == 0.0)  # upper half: rays go up, they never meet the table
    np.testing.assert_allclose(g[3, -3:], 1.0, atol=1e-5)  # lowest rows hit the table within 3 m
    near_horizon = g[3, fh // 2 + 1]  # hits the plane, but farther than depth_range.max_m
    assert np.all(near_horizon == 0.0)
    under_table = look_at([0.5, 0.0, -0.4], [0.5, 0.01, -1.0])  # below the plane looking down
    assert np.all(plane_geometry(CAMERA, under_table, config, 0.0)[3] == 0.0)
    looking_up = look_at([0.5, 0.0, 0.5], [0.5, 0.01, 1.5])
    assert np.all(plane_geometry(CAMERA, looking_up, config)[3] == 0.0)


def test_plane_geometry_is_cached_but_callers_cannot_corrupt_the_cache():
    config = GraspModelConfig()
    pose = pose_to_matrix(CALIBRATION)
    first = plane_geometry(CAMERA, pose, config)
    first[:] = -7.0
    again = plane_geometry(CAMERA, pose, config)
    assert again.flags.writeable and not np.any(again == -7.0)
    moved = pose.copy()
    moved[:3, 3] += [0.1, -0.05, 0.0]  # camera slid along the table: the plane points slide with it
    shifted = plane_geometry(CAMERA, moved, config)
    valid = (again[3] > 0.99) & (shifted[3] > 0.99)
    np.testing.assert_allclose(shifted[0, valid] - again[0, valid], 0.1, atol=1e-5)
    np.testing.assert_allclose(shifted[1, valid] - again[1, valid], -0.05, atol=1e-5)


def test_bad_poses_and_extrinsics_name_the_field():
    config = GraspModelConfig()
    bad = pose_to_matrix(CALIBRATION)
    bad[0, 3] = np.nan
    with pytest.raises(PreprocessingError, match="camera_to_base"):
        plane_geometry(CAMERA, bad, config)
    with pytest.raises(PreprocessingError, match="plane_z"):
        plane_geometry(CAMERA, pose_to_matrix(CALIBRATION), config, float("inf"))
    with pytest.raises(ExtrinsicsError, match="norm 2") as err:
        extrinsics_matrix([0, 0, 1], [0, 0, 0, 2.0])
    assert err.value.field == "rotation"
    with pytest.raises(ExtrinsicsError, match="translation") as err:
        extrinsics_matrix([0, np.inf, 1], [0, 0, 0, 1.0])
    assert err.value.field == "translation"
    nearly_unit = np.array(CALIBRATION[3:]) * 1.0005  # rounding in a message: accepted, normalised
    np.testing.assert_allclose(extrinsics_matrix(CALIBRATION[:3], nearly_unit), pose_to_matrix(CALIBRATION),
                               atol=1e-9)


def test_rgb_encoder_preprocess_checks_its_inputs():
    model = GraspVLA(GraspModelConfig())
    rgb = np.zeros((120, 160, 3), np.uint8)
    assert set(model.rgb_encoder.preprocess(rgb)) == {"image"}
    out = model.rgb_encoder.preprocess({"rgb": rgb, "camera": CAMERA, "camera_to_base": pose_to_matrix(CALIBRATION),
                                        "plane_z": 0.05})
    np.testing.assert_array_equal(out["geometry"], plane_geometry(CAMERA, pose_to_matrix(CALIBRATION),
                                                                  model.config, 0.05))
    with pytest.raises(PreprocessingError, match="camera_to_base is missing"):
        model.rgb_encoder.preprocess(rgb, camera=CAMERA)
    with pytest.raises(PreprocessingError, match="CameraInfo says 160x120"):
        model.rgb_encoder.preprocess(np.zeros((96, 128, 3), np.uint8), CAMERA, pose_to_matrix(CALIBRATION))
    assert len(accepted_feature_shapes(model.config, "rgb")) == 2
    with pytest.raises(ValueError, match="rgb feature has 33 channels"):
        model.fusion({"rgb": torch.zeros(1, 33, 32, 32)})


@pytest.fixture(scope="module")
def shipped():
    model = load_pretrained(SHIPPED)
    assert isinstance(model, GraspVLA)
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    pose = pose_to_matrix(CALIBRATION)
    depth = render_plane_depth(CAMERA, pose, 0.0)
    depth[50:70, 60:90] -= 0.1  # an object on the table
    depth_in, geometry = prepare_depth(depth, CAMERA, pose, model.config)
    inputs = {"rgb": torch.from_numpy(prepare_rgb(rgb, model.config))[None],
              "depth": torch.from_numpy(depth_in)[None], "geometry": torch.from_numpy(geometry)[None],
              "rgb_geometry": torch.from_numpy(model.rgb_encoder.preprocess(rgb, CAMERA, pose)["geometry"])[None],
              "raw_rgb": rgb}
    instruction = SentenceEncoder().encode(["pick up the red cube"])
    return model, inputs, instruction


def test_rgb_only_forward_places_finite_grasps_on_the_table(shipped):
    model, inputs, instruction = shipped
    with torch.inference_mode():
        blind = model(instruction, rgb=inputs["rgb"])
        pred = model(instruction, rgb=inputs["rgb"], rgb_geometry=inputs["rgb_geometry"])
    assert not bool(blind.localised[0])  # without geometry nothing can be localised: why plane geometry exists
    assert bool(pred.localised[0]) and torch.isfinite(pred.position).all()
    x, y, z = pred.position[0].tolist()
    assert abs(z) <= 0.05 + 1e-6  # on the table plane up to the head's height offset
    geometry = inputs["rgb_geometry"][0]
    seen = geometry[3] > 0.5
    cells = geometry[:2][:, seen].T
    assert torch.min(torch.linalg.norm(cells - torch.tensor([x, y]), dim=1)) < 1e-6  # a visible table cell
    assert torch.isfinite(pred.yaw).all() and 0.0 <= float(pred.width[0]) <= model.config.max_gripper_width_m


def test_shipped_rgbd_outputs_are_unchanged(shipped):
    model, inputs, instruction = shipped
    # a plane well above the table: any leak of the RGB geometry would move the grasp by ~0.3 m
    raised = model.rgb_encoder.preprocess(inputs["raw_rgb"], CAMERA, pose_to_matrix(CALIBRATION), plane_z=0.3)
    with torch.inference_mode():
        base = model(instruction, rgb=inputs["rgb"], depth=inputs["depth"], geometry=inputs["geometry"])
        with_plane = model(instruction, rgb=inputs["rgb"], depth=inputs["depth"], geometry=inputs["geometry"],
                           rgb_geometry=torch.from_numpy(raised["geometry"])[None])
        # the pre-RGB-only path, composed from the components: no geometry on the RGB feature
        rgb_feature = model.rgb_encoder.net(inputs["rgb"])
        depth_feature = model.depth_encoder.net(inputs["depth"])
        ones = torch.ones(1, 1, *rgb_feature.shape[-2:])
        fused = model.fusion.mix(torch.cat([rgb_feature, depth_feature, ones, ones], dim=1))
        reference = model.head(torch.cat([fused, inputs["geometry"]], dim=1), instruction)
    for name in ("position", "yaw", "width", "score", "heatmap", "localised"):
        assert torch.equal(getattr(base, name), getattr(with_plane, name)), name  # depth geometry wins
        assert torch.equal(getattr(base, name), getattr(reference, name)), name
