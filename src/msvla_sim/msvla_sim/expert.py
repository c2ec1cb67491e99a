"""The scripted expert's conventions, shared by the episode recorder and the trainers: the camera
calibration file, instruction phrasings, grasp-yaw symmetry of each shape and the opening margin."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from msvla_core.config import load_yaml

from .camera import camera_spec_from_pose
from .franka_scene import FrankaTabletopScene


def read_camera_to_base(path: str | Path) -> list[float]:
    """Pose of the camera optical frame in panda_link0 from the graph's calibration file, the
    same file the live simulator and depth encoder read."""
    params = load_yaml(path)["/**"]["ros__parameters"]
    return [float(v) for v in params["camera_to_base"]]

# Yaw symmetry of each shape under a top-down parallel-jaw grasp (None: any yaw works).
YAW_PERIOD = {"cube": math.pi / 2, "box": math.pi, "cylinder": None}
# Extra opening beyond the object's extent across the closing direction.
WIDTH_MARGIN_M = 0.025

# Shape words the instruction parser (msvla_sim.instructions) maps to each shape.
SHAPE_SYNONYMS = {"cube": ("cube", "block"), "cylinder": ("cylinder", "can"), "box": ("box", "brick")}
TEMPLATES = (
    "pick up the {colour} {shape}",
    "grasp the {colour} {shape}",
    "pick the {colour} {shape}",
    "pick up the {colour} {shape} please",
    "grab the {colour} {shape}",
    "lift the {colour} {shape}",
    "take the {colour} {shape}",
)


def instruction_for(rng: np.random.Generator, colour: str, shape: str) -> str:
    """A random phrasing naming the object by colour and a shape word."""
    words = SHAPE_SYNONYMS[shape]
    # The canonical shape word is used most often; synonyms keep the embedding robust.
    word = words[0] if rng.random() < 0.6 else words[int(rng.integers(len(words)))]
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    return template.format(colour=colour, shape=word)


def make_scene(width: int, height: int, camera_pose: list[float]):
    """The simulator scene with the live graph's calibrated camera."""
    return FrankaTabletopScene(width, height, camera=camera_spec_from_pose(camera_pose))


def fold_yaw(yaw: float, period: float) -> float:
    """Fold an angle into [-period/2, period/2)."""
    return (yaw + 0.5 * period) % period - 0.5 * period
