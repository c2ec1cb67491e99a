"""Tests of the ROS-free tabletop scene, run against real PyBullet physics."""

import json
import math
import os
import sys
import time

import numpy as np
import pytest


# Import the package from this source tree when it is not installed.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)

from msvla_sim.camera import RenderCamera, CameraSpec, look_at_pose  # noqa: E402
from msvla_sim.franka_scene import (JOINT_NAMES, FrankaTabletopScene,  # noqa: E402
                                    GraspOutcome, fold_grasp_yaw)
from msvla_sim.instructions import parse_target, resolve_instruction  # noqa: E402
from msvla_sim.catalogue import SCENE_SETS  # noqa: E402
from msvla_sim.franka_scene import WIDTH_MARGIN_M  # noqa: E402


@pytest.fixture(scope="module")
def scene():
    s = FrankaTabletopScene()
    yield s
    s.close()


def _grasp_width(obj):
    return min(0.08, obj["grasp_width"] + 0.03)


# ------------------------------------------------------------------ reset

def test_reset_is_deterministic_for_a_seed(scene):
    first = scene.reset(7)
    again = scene.reset(7)
    other = FrankaTabletopScene()
    try:
        fresh = other.reset(7)
    finally:
        other.close()
    assert first == again
    assert first == fresh
    assert scene.reset(8)["objects"] != first["objects"]


def test_scene_description_contents(scene):
    for seed in range(5):
        desc = scene.reset(seed)
        json.dumps(desc)
        assert desc["seed"] == seed
        objs = desc["objects"]
        assert 3 <= len(objs) <= 6
        names = [o["name"] for o in objs]
        assert len(set(names)) == len(names)
        ws = desc["workspace"]
        for o in objs:
            assert o["name"] == f"{o['colour']} {o['shape']}"
            x, y, z = o["position"]
            assert ws["min"][0] <= x <= ws["max"][0]
            assert ws["min"][1] <= y <= ws["max"][1]
            # Resting on the table: centre at half the object's height.
            assert z == pytest.approx(0.5 * o["size"][2], abs=2e-3)
            assert -math.pi <= o["yaw"] < math.pi
    assert len(scene.reset(0, n_objects=4)["objects"]) == 4


def test_two_scenes_coexist():
    a, b = FrankaTabletopScene(), FrankaTabletopScene()
    try:
        assert a.client_id != b.client_id
        da = a.reset(1)
        b.reset(2)
        b.execute_grasp(b.scene_description()["objects"][0]["position"], 0.0, 0.08)
        assert a.scene_description() == da
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------------ camera

def test_render_outputs(scene):
    scene.reset(3)
    rgb, depth, cam = scene.render()
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    assert depth.shape == (128, 128) and depth.dtype == np.float32
    assert isinstance(cam, RenderCamera)
    assert cam.near < depth.min() and depth.max() < cam.far
    # Optical frame is right-handed and +z looks down at the table.
    rot = cam.pose[:3, :3]
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    assert rot[2, 2] < -0.5
    json.dumps(cam.to_dict())


@pytest.mark.parametrize("size", [(128, 128), (160, 120)])
def test_deprojected_object_tops_match_ground_truth(size):
    width, height = size
    s = FrankaTabletopScene(image_width=width, image_height=height)
    try:
        checked = 0
        for seed in range(3):
            desc = s.reset(seed)
            rgb, depth, seg, cam = s.render_with_segmentation()
            assert depth.shape == (height, width)
            for obj in desc["objects"]:
                top = np.asarray(obj["position"]) + [0.0, 0.0, 0.5 * obj["size"][2]]
                uv, _ = cam.project(top)
                u, v = (int(round(c)) for c in uv[0])
                assert 0 <= u < width and 0 <= v < height
                if seg[v, u] != obj["id"]:
                    continue  # hidden behind another object
                point = cam.deproject(u, v, depth[v, u])[0]
                assert np.linalg.norm(point - top) < 0.01, (obj["name"], point, top)
                checked += 1
        assert checked >= 10
    finally:
        s.close()


def test_look_at_pose_axes():
    pose = look_at_pose((1.0, 0.0, 1.0), (0.0, 0.0, 0.0))
    assert np.allclose(pose[:3, 2], np.array([-1.0, 0.0, -1.0]) / math.sqrt(2))
    assert np.allclose(pose[:3, 0], [0.0, 1.0, 0.0])  # image right is +y here
    cam = RenderCamera.from_spec(CameraSpec(), 128, 128)
    uv, z = cam.project(np.array([[0.5, 0.1, 0.02]]))
    back = cam.deproject(uv[:, 0], uv[:, 1], z)
    assert np.allclose(back, [[0.5, 0.1, 0.02]])


# ------------------------------------------------------------------ robot

def test_joint_state(scene):
    scene.reset(0)
    names, pos, vel = scene.joint_state()
    assert names == list(JOINT_NAMES)
    assert names[:7] == [f"panda_joint{i}" for i in range(1, 8)]
    assert names[7:] == ["panda_finger_joint1", "panda_finger_joint2"]
    assert len(pos) == len(vel) == 9
    assert all(math.isfinite(p) for p in pos)


def test_fold_grasp_yaw():
    for yaw in np.linspace(-7.0, 7.0, 57):
        f = fold_grasp_yaw(yaw)
        assert -math.pi / 2 <= f < math.pi / 2
        # Same undirected closing axis.
        assert math.sin(2 * f) == pytest.approx(math.sin(2 * yaw), abs=1e-9)
        assert math.cos(2 * f) == pytest.approx(math.cos(2 * yaw), abs=1e-9)


def test_ground_truth_grasps_succeed(scene):
    rng = np.random.default_rng(2024)
    successes, durations = 0, []
    for seed in range(100, 110):
        desc = scene.reset(seed)
        target = desc["objects"][int(rng.integers(len(desc["objects"])))]
        outcome = scene.execute_grasp(target["position"], target["yaw"], _grasp_width(target))
        assert isinstance(outcome, GraspOutcome)
        json.dumps(outcome.to_dict())
        durations.append(outcome.duration_s)
        successes += outcome.success_for(target["name"])
    print(f"ground-truth grasps: {successes}/10 succeeded, "
          f"mean {np.mean(durations):.3f} s, max {np.max(durations):.3f} s")
    assert successes >= 9
    assert np.mean(durations) < 3.0


def test_grasp_is_symmetric_under_half_turn(scene):
    desc = scene.reset(11, n_objects=3)
    target = desc["objects"][0]
    outcome = scene.execute_grasp(target["position"], target["yaw"] + math.pi,
                                  _grasp_width(target))
    assert outcome.reached
    assert outcome.success_for(target["name"])


def test_grasp_on_empty_spot_lifts_nothing(scene):
    desc = scene.reset(5)
    rng = np.random.default_rng(0)
    ws = desc["workspace"]
    for _ in range(1000):
        x = rng.uniform(ws["min"][0], ws["max"][0])
        y = rng.uniform(ws["min"][1], ws["max"][1])
        if all(math.hypot(x - o["position"][0], y - o["position"][1]) > 0.12
               for o in desc["objects"]):
            break
    else:
        raise AssertionError("seed 5 has no empty spot 12 cm from every object; pick another seed")
    outcome = scene.execute_grasp([x, y, 0.0225], 0.0, 0.08)
    assert outcome.reached
    assert outcome.lifted == []
    assert not outcome.success


def test_grasp_lifts_then_release_modes(scene):
    desc = scene.reset(4)
    target = desc["objects"][0]
    start = np.asarray(target["position"])
    t0 = time.perf_counter()
    outcome = scene.execute_grasp(target["position"], target["yaw"], _grasp_width(target),
                                  release="place")
    assert time.perf_counter() - t0 < 5.0
    assert outcome.success_for(target["name"])
    # Placed back close to where it was, arm back home.
    pos, _ = scene.object_pose(target["name"])
    assert np.linalg.norm(pos[:2] - start[:2]) < 0.03
    assert pos[2] == pytest.approx(start[2], abs=5e-3)
    _, joints, _ = scene.joint_state()
    assert joints[3] < -2.5
    outcome = scene.execute_grasp(pos, scene.object_pose(target["name"])[1], _grasp_width(target),
                                  release="remove")
    assert outcome.success_for(target["name"])
    assert target["name"] not in scene.object_names


def test_unreachable_grasp_is_reported(scene):
    scene.reset(0)
    outcome = scene.execute_grasp([2.0, 0.0, 0.05], 0.0, 0.08)
    assert not outcome.reached
    assert outcome.lifted == []
    assert "unreachable" in outcome.message


# ------------------------------------------------------------------ language

_DESC = {"objects": [
    {"id": 0, "name": "red cube", "colour": "red", "shape": "cube"},
    {"id": 1, "name": "blue cylinder", "colour": "blue", "shape": "cylinder"},
    {"id": 2, "name": "green cube", "colour": "green", "shape": "cube"},
    {"id": 3, "name": "green box", "colour": "green", "shape": "box"},
    {"id": 4, "name": "purple cylinder", "colour": "purple", "shape": "cylinder"},
]}


@pytest.mark.parametrize("text, expected", [
    ("pick up the red cube", "red cube"),
    ("Pick up the RED cube.", "red cube"),
    ("grasp the blue cylinder", "blue cylinder"),
    ("Pick the green block", "green cube"),
    ("pick the green box", "green box"),
    ("grab the violet can", "purple cylinder"),
    ("pick up the red one", "red cube"),
    ("pick up the blue object", "blue cylinder"),
    ("put the red cube next to the blue cylinder", "red cube"),
    ("pick up the green object", None),      # green cube or green box
    ("pick up the cube", None),              # two cubes
    ("pick up the cylinder", None),          # two cylinders
    ("pick up the yellow cube", None),       # not in the scene
    ("pick up the red cylinder", None),      # not in the scene
    ("pick up the red or blue cube", None),
    ("pick something up", None),
    ("", None),
])
def test_resolve_instruction(text, expected):
    assert resolve_instruction(text, _DESC) == expected


def test_resolve_instruction_on_a_live_scene(scene):
    desc = scene.reset(2)
    for obj in desc["objects"]:
        assert resolve_instruction(f"pick up the {obj['name']}", desc) == obj["name"]
        text = f"Grasp the {obj['colour']} {obj['shape']}!"
        assert resolve_instruction(text, desc["objects"]) == obj["name"]
    assert parse_target("pick the green block") == ("green", "cube")


def test_shape_catalogue_fits_the_gripper():
    for kinds, _ in SCENE_SETS.values():
        for kind in kinds.values():
            assert min(kind.size[:2]) + WIDTH_MARGIN_M <= 0.08, kind.key
