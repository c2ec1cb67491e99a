"""The scripted expert's conventions, shared by the episode recorder and the trainers: the camera
calibration file, grasp-yaw symmetry of each shape and the opening margin."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from msvla_core.config import load_yaml

from .camera import camera_spec_from_pose
from .franka_scene import WIDTH_MARGIN_M, FrankaTabletopScene
from .franka_scene import YAW_PERIOD as SCENE_YAW_PERIOD
from .referring import SHAPE_SYNONYMS
from .referring import instruction_for as referring_instruction


def read_camera_to_base(path: str | Path) -> list[float]:
    """Pose of the camera optical frame in panda_link0 from the graph's calibration file, the
    same file the live simulator and depth encoder read."""
    params = load_yaml(path)["/**"]["ros__parameters"]
    return [float(v) for v in params["camera_to_base"]]

# Yaw symmetry of each shape under a top-down parallel-jaw grasp (None: any yaw works); the scene's
# expert grasps use the same table, meshes are half-turn symmetric.
YAW_PERIOD = {**{shape: math.pi for shape in SHAPE_SYNONYMS}, **SCENE_YAW_PERIOD}


def instruction_for(rng: np.random.Generator, colour: str, shape: str) -> str:
    """A training phrasing naming an object by colour and a shape word (basic scenes, where colour
    and shape always single out one object)."""
    target = {"colour": colour, "shape": shape, "size_word": None}
    return referring_instruction(target, [target], rng, "train", require_colour=True)


def make_scene(width: int, height: int, camera_pose: list[float], **options):
    """The simulator scene with the live graph's calibrated camera (``options``: scene_set, split,
    noise, jitter of FrankaTabletopScene)."""
    return FrankaTabletopScene(width, height, camera=camera_spec_from_pose(camera_pose), **options)


def fold_yaw(yaw: float, period: float) -> float:
    """Fold an angle into [-period/2, period/2)."""
    return (yaw + 0.5 * period) % period - 0.5 * period
