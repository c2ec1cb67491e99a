"""Object catalogue and layout sampling for the tabletop scene.

Objects are simple rigid primitives (boxes and cylinders) in a fixed, named
colour palette, so every object can be named unambiguously by its colour and
shape words ("red cube", "blue cylinder", ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

# Named colour palette (RGB in [0, 1]); the keys are the colour words used in
# object names and instructions.
COLOURS: Dict[str, Tuple[float, float, float]] = {
    "red": (0.86, 0.10, 0.10),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.10, 0.28, 0.88),
    "yellow": (0.96, 0.86, 0.08),
    "orange": (1.00, 0.48, 0.02),
    "purple": (0.52, 0.16, 0.72),
}


@dataclass(frozen=True)
class ShapeSpec:
    """A primitive object type. ``size`` is the full extent (x, y, z) in metres
    in the object's own frame (for a cylinder x = y = diameter)."""

    name: str
    primitive: str  # "box" or "cylinder"
    size: Tuple[float, float, float]
    mass: float

    @property
    def footprint_radius(self) -> float:
        """Radius of the smallest circle around the object's footprint."""
        if self.primitive == "cylinder":
            return 0.5 * self.size[0]
        return 0.5 * math.hypot(self.size[0], self.size[1])

    @property
    def grasp_width(self) -> float:
        """Narrowest horizontal extent, i.e. the width a top-down grasp closes on."""
        return min(self.size[0], self.size[1])


SHAPES: Dict[str, ShapeSpec] = {
    "cube": ShapeSpec("cube", "box", (0.045, 0.045, 0.045), 0.08),
    "cylinder": ShapeSpec("cylinder", "cylinder", (0.040, 0.040, 0.055), 0.07),
    # Elongated box: long axis along the object's x axis, so a top-down grasp
    # with yaw equal to the object's yaw closes across its short side.
    "box": ShapeSpec("box", "box", (0.080, 0.035, 0.045), 0.09),
}

# Relative frequency with which each shape is drawn.
SHAPE_WEIGHTS: Dict[str, float] = {"cube": 0.5, "cylinder": 0.25, "box": 0.25}


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


@dataclass(frozen=True)
class ObjectPlacement:
    """A sampled object: what it is and where it goes (before settling)."""

    index: int
    colour: str
    shape: str
    x: float
    y: float
    yaw: float

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    @property
    def spec(self) -> ShapeSpec:
        return SHAPES[self.shape]


def wrap_angle(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return (float(angle) + math.pi) % (2.0 * math.pi) - math.pi


def sample_kinds(rng: np.random.Generator, n: int) -> List[Tuple[str, str]]:
    """``n`` distinct (colour, shape) pairs, so object names are unique."""
    colours = list(COLOURS)
    shapes = list(SHAPES)
    weights = np.array([SHAPE_WEIGHTS[s] for s in shapes], dtype=float)
    pairs = [(c, s) for c in colours for s in shapes]
    if n > len(pairs):
        raise ValueError(f"at most {len(pairs)} distinct objects are available")
    pair_weights = np.array([weights[shapes.index(s)] for _, s in pairs])
    pair_weights /= pair_weights.sum()
    chosen = rng.choice(len(pairs), size=n, replace=False, p=pair_weights)
    return [pairs[i] for i in chosen]


def sample_layout(rng: np.random.Generator, n: int, workspace: Workspace,
                  clearance: float = 0.04, max_attempts: int = 200) -> List[ObjectPlacement]:
    """Random non-overlapping placements of ``n`` distinct objects.

    Footprint circles are kept at least ``clearance`` apart so that the open
    gripper fingers fit between neighbours. If a layout cannot be found the
    clearance is relaxed step by step (still without overlap).
    """
    kinds = sample_kinds(rng, n)
    # Place the largest objects first; it makes rejection sampling easier.
    order = sorted(range(n), key=lambda i: -SHAPES[kinds[i][1]].footprint_radius)
    gap = clearance
    while True:
        for _ in range(max_attempts):
            placed: Dict[int, Tuple[float, float]] = {}
            ok = True
            for i in order:
                radius = SHAPES[kinds[i][1]].footprint_radius
                found: Optional[Tuple[float, float]] = None
                for _try in range(100):
                    x = rng.uniform(workspace.x_min + radius, workspace.x_max - radius)
                    y = rng.uniform(workspace.y_min + radius, workspace.y_max - radius)
                    if all(math.hypot(x - px, y - py)
                           >= radius + SHAPES[kinds[j][1]].footprint_radius + gap
                           for j, (px, py) in placed.items()):
                        found = (x, y)
                        break
                if found is None:
                    ok = False
                    break
                placed[i] = found
            if ok:
                yaws = rng.uniform(-math.pi, math.pi, size=n)
                return [ObjectPlacement(i, kinds[i][0], kinds[i][1],
                                        float(placed[i][0]), float(placed[i][1]),
                                        float(wrap_angle(yaws[i])))
                        for i in range(n)]
        if gap <= 0.0:
            raise RuntimeError("could not place the objects inside the workspace")
        gap = max(0.0, gap - 0.01)


def _make_shapes(pb, client: int, spec: ShapeSpec, colour: str) -> Tuple[int, int]:
    rgba = list(COLOURS[colour]) + [1.0]
    sx, sy, sz = spec.size
    if spec.primitive == "box":
        half = [0.5 * sx, 0.5 * sy, 0.5 * sz]
        col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=half, physicsClientId=client)
        vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=half, rgbaColor=rgba,
                                   physicsClientId=client)
    elif spec.primitive == "cylinder":
        col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=0.5 * sx, height=sz,
                                      physicsClientId=client)
        vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=0.5 * sx, length=sz,
                                   rgbaColor=rgba, physicsClientId=client)
    else:
        raise ValueError(f"unknown primitive {spec.primitive!r}")
    return col, vis


def spawn_object(pb, client: int, placement: ObjectPlacement, z_base: float = 0.0,
                 lateral_friction: float = 1.0,
                 shape_cache: Optional[Dict[tuple, Tuple[int, int]]] = None) -> int:
    """Create the rigid body for ``placement`` resting on a surface at ``z_base``.

    ``shape_cache`` (keyed by (colour, shape)) lets repeated resets reuse the
    collision and visual shapes instead of creating new ones every time.
    """
    spec = placement.spec
    sz = spec.size[2]
    key = (placement.colour, placement.shape)
    if shape_cache is not None and key in shape_cache:
        col, vis = shape_cache[key]
    else:
        col, vis = _make_shapes(pb, client, spec, placement.colour)
        if shape_cache is not None:
            shape_cache[key] = (col, vis)
    orn = pb.getQuaternionFromEuler([0.0, 0.0, placement.yaw])
    body = pb.createMultiBody(baseMass=spec.mass,
                              baseCollisionShapeIndex=col,
                              baseVisualShapeIndex=vis,
                              basePosition=[placement.x, placement.y, z_base + 0.5 * sz + 1e-4],
                              baseOrientation=orn,
                              physicsClientId=client)
    pb.changeDynamics(body, -1, lateralFriction=lateral_friction,
                      spinningFriction=0.002, rollingFriction=0.0,
                      restitution=0.0, physicsClientId=client)
    return body
