"""Layout sampling and spawning of the tabletop objects (kinds and colours: msvla_sim.catalogue).

Two scene sets exist. "basic": 3-6 primitives, every (colour, shape) pair at most once, so a colour
and a shape word always name one object. "cluttered": 5-8 objects of mixed kinds and sizes whose
colours are drawn from a small per-scene palette, so colours repeat across shapes and sometimes
the same coloured shape appears twice; instructions then need size or position words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .catalogue import (BASIC_KINDS, COLOURS, OBJECT_COUNTS, ObjectKind, draw_mesh_id, kinds_of,
                        mesh_path)

# Shapes of the basic set by noun (kept for callers that size grasps by shape).
SHAPES: Dict[str, ObjectKind] = dict(BASIC_KINDS)


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box (base frame, metres) in which objects are placed.
    ``z_min`` is the table surface."""

    x_min: float = 0.35
    x_max: float = 0.65
    y_min: float = -0.20
    y_max: float = 0.20
    z_min: float = 0.0
    z_max: float = 0.20

    def contains(self, point: Sequence[float], margin: float = 0.0) -> bool:
        x, y, z = (float(c) for c in point[:3])
        return (self.x_min - margin <= x <= self.x_max + margin
                and self.y_min - margin <= y <= self.y_max + margin
                and self.z_min - margin <= z <= self.z_max + margin)

    def to_dict(self) -> dict:
        return {
            "frame_id": "panda_link0",
            "min": [self.x_min, self.y_min, self.z_min],
            "max": [self.x_max, self.y_max, self.z_max],
            "table_height": self.z_min,
        }


# Cluttered scenes need more room between up to eight objects; still inside the camera view and
# the arm's comfortable reach.
CLUTTER_WORKSPACE = Workspace(x_min=0.33, x_max=0.67, y_min=-0.24, y_max=0.24)


@dataclass(frozen=True)
class ObjectPlacement:
    """A sampled object: what it is and where it goes (before settling)."""

    index: int
    colour: str
    kind: ObjectKind
    x: float
    y: float
    yaw: float
    mesh_id: Optional[int] = None
    name: str = ""

    @property
    def shape(self) -> str:
        return self.kind.shape

    @property
    def size_word(self) -> Optional[str]:
        return self.kind.size_word


def wrap_angle(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return (float(angle) + math.pi) % (2.0 * math.pi) - math.pi


def _basic_kinds(rng: np.random.Generator, n: int, kinds, weights) -> List[Tuple[str, ObjectKind]]:
    """``n`` distinct (colour, kind) pairs, so colour + shape names one object."""
    pairs = [(c, k) for c in COLOURS for k in kinds]
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} distinct objects are available")
    p = np.array([weights[k] for _, k in pairs], dtype=float)
    chosen = rng.choice(len(pairs), size=n, replace=False, p=p / p.sum())
    return [(pairs[i][0], kinds[pairs[i][1]]) for i in chosen]


def _cluttered_kinds(rng: np.random.Generator, n: int, kinds, weights) -> List[Tuple[str, ObjectKind]]:
    """Kinds by weight; colours from a 2-4 colour palette of the scene so that they repeat."""
    keys = list(kinds)
    p = np.array([weights[k] for k in keys], dtype=float)
    picked = rng.choice(len(keys), size=n, replace=True, p=p / p.sum())
    palette = rng.choice(list(COLOURS), size=int(rng.integers(2, 5)), replace=False)
    return [(str(palette[int(rng.integers(len(palette)))]), kinds[keys[i]]) for i in picked]


def unique_names(placements: Sequence[Tuple[str, ObjectKind]]) -> List[str]:
    """Display names: "[size ]colour shape", with " #<index>" where that is still ambiguous."""
    base = [(f"{k.size_word} " if k.size_word else "") + f"{c} {k.shape}" for c, k in placements]
    return [b if base.count(b) == 1 else f"{b} #{i}" for i, b in enumerate(base)]


def sample_layout(rng: np.random.Generator, n: int, workspace: Workspace, scene_set: str = "basic",
                  split: str = "train", clearance: float = 0.04,
                  max_attempts: int = 200) -> List[ObjectPlacement]:
    """Random non-overlapping placements of ``n`` objects of ``scene_set``.

    Footprint circles are kept at least ``clearance`` apart so that the open gripper fingers fit
    between neighbours. If a layout cannot be found the clearance is relaxed step by step (still
    without overlap). ``split`` chooses the mesh pool of random toys (held-out meshes).
    """
    kinds, weights = kinds_of(scene_set)
    chosen = (_basic_kinds if scene_set == "basic" else _cluttered_kinds)(rng, n, kinds, weights)
    names = unique_names(chosen)
    mesh_ids = [draw_mesh_id(rng, k, split) for _, k in chosen]
    radii = [k.footprint_radius for _, k in chosen]
    # Place the largest objects first; it makes rejection sampling easier.
    order = sorted(range(n), key=lambda i: -radii[i])
    gap = clearance
    while True:
        for _ in range(max_attempts):
            placed: Dict[int, Tuple[float, float]] = {}
            for i in order:
                found = None
                for _try in range(100):
                    x = rng.uniform(workspace.x_min + radii[i], workspace.x_max - radii[i])
                    y = rng.uniform(workspace.y_min + radii[i], workspace.y_max - radii[i])
                    if all(math.hypot(x - px, y - py) >= radii[i] + radii[j] + gap
                           for j, (px, py) in placed.items()):
                        found = (x, y)
                        break
                if found is None:
                    break
                placed[i] = found
            if len(placed) == n:
                yaws = rng.uniform(-math.pi, math.pi, size=n)
                return [ObjectPlacement(i, chosen[i][0], chosen[i][1], float(placed[i][0]),
                                        float(placed[i][1]), float(wrap_angle(yaws[i])), mesh_ids[i],
                                        names[i])
                        for i in range(n)]
        if gap <= 0.0:
            raise RuntimeError("could not place the objects inside the workspace")
        gap = max(0.0, gap - 0.01)


def default_count(rng: np.random.Generator, scene_set: str) -> int:
    lo, hi = OBJECT_COUNTS[scene_set]
    return int(rng.integers(lo, hi + 1))


@dataclass
class SpawnedBody:
    """A body in the simulation plus its own-frame bounding box, measured upright at spawn time,
    from which grasps are computed."""

    body: int
    local_centre: np.ndarray  # (3,) box centre in the body frame
    extents: np.ndarray  # (3,) full extents in the body frame


def _primitive_shapes(pb, client: int, kind: ObjectKind, colour: str) -> Tuple[int, int]:
    rgba = list(COLOURS[colour]) + [1.0]
    sx, sy, sz = kind.size
    if kind.primitive == "box":
        half = [0.5 * sx, 0.5 * sy, 0.5 * sz]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=client)
    elif kind.primitive == "cylinder":
        col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=0.5 * sx, height=sz, physicsClientId=client)
        vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=0.5 * sx, length=sz, rgbaColor=rgba,
                                   physicsClientId=client)
    else:
        raise ValueError(f"unknown primitive {kind.primitive!r}")
    return col, vis


def spawn_object(pb, client: int, placement: ObjectPlacement, z_base: float = 0.0,
                 lateral_friction: float = 1.0,
                 shape_cache: Optional[Dict[tuple, Tuple[int, int]]] = None) -> SpawnedBody:
    """Create the rigid body for ``placement`` resting on a surface at ``z_base``.

    ``shape_cache`` (keyed by (colour, kind)) lets repeated resets reuse primitive collision and
    visual shapes instead of creating new ones every time.
    """
    kind = placement.kind
    upright = pb.getQuaternionFromEuler([0.0, 0.0, 0.0])
    if kind.is_mesh:
        body = pb.loadURDF(mesh_path(kind, placement.mesh_id), [0.0, 0.0, 1.0], upright,
                           globalScaling=kind.scale, physicsClientId=client)
        # Flat colour instead of the mesh texture, so colour words mean the same on every kind.
        pb.changeVisualShape(body, -1, rgbaColor=list(COLOURS[placement.colour]) + [1.0],
                             textureUniqueId=-1, physicsClientId=client)
        pb.changeDynamics(body, -1, mass=kind.mass, physicsClientId=client)
    else:
        key = (placement.colour, kind.key)
        if shape_cache is not None and key in shape_cache:
            col, vis = shape_cache[key]
        else:
            col, vis = _primitive_shapes(pb, client, kind, placement.colour)
            if shape_cache is not None:
                shape_cache[key] = (col, vis)
        body = pb.createMultiBody(baseMass=kind.mass, baseCollisionShapeIndex=col,
                                  baseVisualShapeIndex=vis, basePosition=[0.0, 0.0, 1.0],
                                  baseOrientation=upright, physicsClientId=client)
    lo, hi = (np.asarray(v, dtype=float) for v in pb.getAABB(body, -1, physicsClientId=client))
    local_centre = 0.5 * (lo + hi) - np.array([0.0, 0.0, 1.0])
    extents = hi - lo
    orn = pb.getQuaternionFromEuler([0.0, 0.0, placement.yaw])
    # Base position such that the box centre is above (x, y) and the bottom touches the surface.
    rot = np.asarray(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)
    offset = rot @ local_centre
    base = [placement.x - offset[0], placement.y - offset[1],
            z_base + 0.5 * extents[2] - local_centre[2] + 1e-4]
    pb.resetBasePositionAndOrientation(body, base, orn, physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=lateral_friction, spinningFriction=0.002,
                      rollingFriction=0.0, restitution=0.0, physicsClientId=client)
    return SpawnedBody(body, local_centre, extents)
