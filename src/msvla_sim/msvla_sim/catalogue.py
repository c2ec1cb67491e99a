"""What can stand on the table: primitive shapes in two sizes and meshes shipped with pybullet_data.

Every kind is named by one shape noun (the word instructions use) and, for primitives that come
in two sizes, a size word. Meshes are scaled so that a top-down parallel-jaw grasp can close
across their narrow side. The "toy" kind draws from pybullet_data's thousand random meshes: the
first 800 are used for training scenes and the last 200 only in held-out scenes, so evaluation
sees object geometry no model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Named colour palette (RGB in [0, 1]); the keys are the colour words used in instructions.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.10, 0.10),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.10, 0.28, 0.88),
    "yellow": (0.96, 0.86, 0.08),
    "orange": (1.00, 0.48, 0.02),
    "purple": (0.52, 0.16, 0.72),
}

SPLITS = ("train", "heldout")
TOY_MESHES = {"train": range(0, 800), "heldout": range(800, 1000)}


@dataclass(frozen=True)
class ObjectKind:
    """One kind of object. `size` is the full extent (x, y, z) in metres in the object's own frame
    for primitives (cylinder: x = y = diameter); meshes are measured after loading."""

    key: str  # unique catalogue key, e.g. "cube_small"
    shape: str  # the noun naming it: cube, cylinder, box, duck, mug, lego, toy
    primitive: str  # "box", "cylinder" or "mesh"
    mass: float
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    size_word: str | None = None  # "small" / "large" for primitives offered in two sizes
    urdf: str | None = None  # pybullet_data path; "{id:03d}" is filled for the toy pool
    scale: float = 1.0

    @property
    def is_mesh(self) -> bool:
        return self.primitive == "mesh"

    @property
    def footprint_radius(self) -> float:
        """Radius of the circle around the footprint (meshes: a conservative catalogue bound)."""
        if self.primitive == "cylinder":
            return 0.5 * self.size[0]
        return 0.5 * float(np.hypot(self.size[0], self.size[1]))


# The classic primitives of the first scenes, kept for the "basic" scene set.
BASIC_KINDS: dict[str, ObjectKind] = {
    "cube": ObjectKind("cube", "cube", "box", 0.08, (0.045, 0.045, 0.045)),
    "cylinder": ObjectKind("cylinder", "cylinder", "cylinder", 0.07, (0.040, 0.040, 0.055)),
    # Elongated box: long axis along the object's x axis.
    "box": ObjectKind("box", "box", "box", 0.09, (0.080, 0.035, 0.045)),
}
BASIC_WEIGHTS = {"cube": 0.5, "cylinder": 0.25, "box": 0.25}

# Cluttered scenes: two sizes of cube and cylinder, the box, three named meshes (a teddy was tried
# and dropped: its convex parts slip out of the gripper) and random toys.
# Mesh footprint sizes are upper bounds of the scaled meshes (measured with getAABB).
CLUTTER_KINDS: dict[str, ObjectKind] = {
    "cube_small": ObjectKind("cube_small", "cube", "box", 0.05, (0.035, 0.035, 0.035), "small"),
    "cube_large": ObjectKind("cube_large", "cube", "box", 0.10, (0.050, 0.050, 0.050), "large"),
    "cylinder_small": ObjectKind("cylinder_small", "cylinder", "cylinder", 0.05, (0.034, 0.034, 0.050),
                                 "small"),
    "cylinder_large": ObjectKind("cylinder_large", "cylinder", "cylinder", 0.09, (0.050, 0.050, 0.065),
                                 "large"),
    "box": ObjectKind("box", "box", "box", 0.09, (0.080, 0.035, 0.045)),
    "duck": ObjectKind("duck", "duck", "mesh", 0.03, (0.055, 0.051, 0.040), urdf="duck_vhacd.urdf", scale=0.6),
    "mug": ObjectKind("mug", "mug", "mesh", 0.08, (0.040, 0.058, 0.048), urdf="objects/mug.urdf", scale=0.45),
    "lego": ObjectKind("lego", "lego", "mesh", 0.04, (0.044, 0.044, 0.033), urdf="lego/lego.urdf", scale=1.3),
    "toy": ObjectKind("toy", "toy", "mesh", 0.05, (0.045, 0.058, 0.045),
                      urdf="random_urdfs/{id:03d}/{id:03d}.urdf", scale=0.45),
}
CLUTTER_WEIGHTS = {"cube_small": 0.12, "cube_large": 0.12, "cylinder_small": 0.09, "cylinder_large": 0.09,
                   "box": 0.12, "duck": 0.08, "mug": 0.12, "lego": 0.11, "toy": 0.15}

SCENE_SETS = {"basic": (BASIC_KINDS, BASIC_WEIGHTS), "cluttered": (CLUTTER_KINDS, CLUTTER_WEIGHTS)}
# Object counts per scene (inclusive) of each scene set.
OBJECT_COUNTS = {"basic": (3, 6), "cluttered": (5, 8)}


def kinds_of(scene_set: str) -> tuple[dict[str, ObjectKind], dict[str, float]]:
    if scene_set not in SCENE_SETS:
        raise ValueError(f"scene_set must be one of {sorted(SCENE_SETS)}, got {scene_set!r}")
    return SCENE_SETS[scene_set]


def mesh_path(kind: ObjectKind, mesh_id: int | None) -> str:
    if kind.urdf is None:
        raise ValueError(f"{kind.key} is not a mesh")
    return kind.urdf.format(id=int(mesh_id or 0))


def draw_mesh_id(rng: np.random.Generator, kind: ObjectKind, split: str) -> int | None:
    """Which mesh of the pool a toy uses; the split decides the pool (None for other kinds)."""
    if kind.shape != "toy":
        return None
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    pool = TOY_MESHES[split]
    return int(pool[int(rng.integers(len(pool)))])
