"""Time to collision with obstacles in the driving corridor ahead of the vehicle.

Frame: base_link (REP-103, x forward, y left, z up). The corridor is the box
x in [front_offset, front_offset + lookahead], |y| <= half_width, z in [z_min, z_max]; the z band
drops ground returns and overhead structure (bridges, signs, branches).

The box is bent along the arc the vehicle drives (`corridor_points(curvature=...)`, 1/m,
positive left; 0 is the straight box); `CorridorPoints.union` joins the boxes of several arcs. The
vehicle shield uses the arc its wheels are steered to (tan(steering) / wheelbase) and the arc it is
turning on (yaw rate / speed), which differ while the steering moves. The straight box alone
misses, inside a turn, an obstacle on the curved path (the arc leaves the box after roughly
sqrt(2 * half_width * radius) metres); adding it to the arcs brakes for what stands beyond the
outside of a bend (a roadside obstacle after a curve is straight ahead of a car in it).

Moving across the path: a point with a speed across the arc (a radar target read as crossing,
obstacles.crossing_speeds, which reads it along the arc's normal) is placed where its sweep comes
nearest the arc before the vehicle reaches it (its gap at the current speed, at most
PREDICTION_HORIZON_S, plus PASS_MARGIN_S for the vehicle to pass): a pedestrian stepping onto the
road counts before it is in front of the bumper, in a bend as on a straight.

The work is split so a control loop can afford it on 10^4-10^5 points per sensor message:
`corridor_points` (vectorised, once per message) keeps the few points inside the corridor, and
`CorridorPoints.ttc_and_gap` (once per control tick) evaluates them at the current speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Sequence

import numpy as np


PREDICTION_HORIZON_S = 4.0   # longer than any time to collision that brakes or holds the brake
PASS_MARGIN_S = 0.5          # the vehicle occupies a crossing point for about its length / speed
MIN_PREDICTION_SPEED = 1.0   # m/s; a slower (or stopped) vehicle predicts over the full horizon


class CorridorShape(Protocol):
    """What the corridor needs; VehicleLimits and CorridorGeometry both have these attributes."""
    corridor_half_width_m: float
    front_offset_m: float
    lookahead_m: float
    corridor_z_min_m: float
    corridor_z_max_m: float


def validate_corridor(shape: CorridorShape) -> None:
    """ValueError naming the first wrong attribute of a corridor."""
    for name in ("corridor_half_width_m", "lookahead_m"):
        value = getattr(shape, name)
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name}={value} must be finite and > 0")
    if not (math.isfinite(shape.front_offset_m) and shape.front_offset_m >= 0.0):
        raise ValueError(f"front_offset_m={shape.front_offset_m} must be finite and >= 0")
    lo, hi = shape.corridor_z_min_m, shape.corridor_z_max_m
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"need finite corridor_z_min_m < corridor_z_max_m, got corridor_z_min_m={lo}, "
                         f"corridor_z_max_m={hi}")


@dataclass(frozen=True)
class CorridorGeometry:
    corridor_half_width_m: float = 1.1
    front_offset_m: float = 2.0      # base_link to the front bumper
    lookahead_m: float = 40.0        # corridor length beyond the bumper
    corridor_z_min_m: float = 0.2
    corridor_z_max_m: float = 2.5

    def __post_init__(self):
        validate_corridor(self)


class TimeToCollision(NamedTuple):
    ttc_s: float      # inf: nothing in the corridor is closing in
    gap_m: float      # distance from the bumper to the nearest corridor point; inf: corridor empty
    non_finite: int   # points ignored for non-finite coordinates or closing speed


@dataclass(frozen=True)
class CorridorPoints:
    """The points of one sensor message that lie inside the corridor."""
    gaps_m: np.ndarray               # (M,) distance ahead of the front bumper, >= 0
    closing_mps: np.ndarray | None   # (M,) per point, positive = approaching; None: static world
    non_finite: int                  # points of the message ignored as non-finite
    total: int                       # points in the message

    @staticmethod
    def union(parts: Sequence["CorridorPoints"]) -> "CorridorPoints":
        """The points of one message inside any of several corridors (a point inside two is kept
        twice, which changes no time to collision or gap)."""
        first = parts[0]
        closing = None if first.closing_mps is None else np.concatenate([p.closing_mps for p in parts])
        return CorridorPoints(np.concatenate([p.gaps_m for p in parts]), closing, first.non_finite, first.total)

    def ttc_and_gap(self, ego_speed_mps: float, age_s: float = 0.0) -> tuple[float, float]:
        """(ttc_s, gap_m) at forward speed `ego_speed_mps`, `age_s` after the points were measured.

        Static points close at the ego speed, radar points at their own closing speed. Ageing moves
        approaching points closer (receding ones are left where they were measured, which is the
        conservative side); the gap never drops below 0."""
        if not (math.isfinite(ego_speed_mps) and math.isfinite(age_s)):
            raise ValueError(f"ego_speed_mps={ego_speed_mps} and age_s={age_s} must be finite")
        if self.gaps_m.size == 0:
            return math.inf, math.inf
        age_s = max(age_s, 0.0)
        if self.closing_mps is None:  # one closing speed for all: only the nearest point matters
            closing = max(ego_speed_mps, 0.0)
            gap = max(float(self.gaps_m.min()) - closing * age_s, 0.0)
            return (gap / closing if closing > 0.0 else math.inf), gap
        with np.errstate(over="ignore", invalid="ignore"):
            approaching = np.where(np.isfinite(self.closing_mps), np.maximum(self.closing_mps, 0.0), 0.0)
            gaps = np.maximum(self.gaps_m - approaching * age_s, 0.0)
            ttcs = np.divide(gaps, approaching, out=np.full_like(gaps, np.inf), where=approaching > 0.0)
        return float(ttcs.min()), float(gaps.min())


def along_arc(x: np.ndarray, y: np.ndarray, curvature: float) -> tuple[np.ndarray, np.ndarray]:
    """(arc length ahead, lateral offset, positive left) of points relative to the circular path of
    `curvature` (1/m, positive turning left) that leaves base_link along +x; points behind the start
    get a negative arc length. Curvature 0 is the straight path: (x, y)."""
    if abs(curvature) < 1e-9:
        return x, y
    r = 1.0 / curvature  # signed radius: the centre is at (0, r)
    dist = np.hypot(x, y - r)
    lateral = np.sign(r) * (abs(r) - dist)
    theta = np.arctan2(x, np.sign(r) * (r - y))
    return theta * abs(r), lateral


def swept_lateral(gap_m: np.ndarray, lateral: np.ndarray, lateral_speeds: np.ndarray,
                  ego_speed_mps: float) -> np.ndarray:
    """Offsets from the path (positive left) of points moving across it at `lateral_speeds` (m/s,
    positive left), `gap_m` ahead of the bumper along it, each replaced by the offset nearest the
    path that it reaches before the vehicle has passed it."""
    speed = max(ego_speed_mps, MIN_PREDICTION_SPEED) if math.isfinite(ego_speed_mps) else MIN_PREDICTION_SPEED
    t = np.minimum(np.maximum(gap_m, 0.0) / speed, PREDICTION_HORIZON_S) + PASS_MARGIN_S
    end = lateral + np.where(np.isfinite(lateral_speeds), lateral_speeds, 0.0) * t
    return np.clip(0.0, np.minimum(lateral, end), np.maximum(lateral, end))


def corridor_points(points_xyz: np.ndarray, shape: CorridorShape,
                    closing_speeds: np.ndarray | None = None, curvature: float = 0.0,
                    lateral_speeds: np.ndarray | None = None, ego_speed_mps: float = 0.0) -> CorridorPoints:
    """Keep the points (N, 3) inside the box bent along `curvature` (0: the straight box), points
    with `lateral_speeds` (across the arc) where their sweep comes nearest it (module docstring);
    a point's gap is its arc length beyond the bumper. Points with a non-finite coordinate are
    ignored; a point whose closing speed is non-finite still counts for the gap (its position is
    known) but not for the time to collision. Both kinds are counted in `non_finite`."""
    if not math.isfinite(curvature):
        raise ValueError(f"curvature={curvature} must be finite")
    points = np.asarray(points_xyz, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points_xyz must have shape (N, 3), got {points.shape}")
    closing = None
    if closing_speeds is not None:
        closing = np.asarray(closing_speeds, dtype=float)
        if closing.shape != (points.shape[0],):
            raise ValueError(f"closing_speeds must have shape ({points.shape[0]},) like the points, "
                             f"got {closing.shape}")
    finite = np.isfinite(points).all(axis=1)
    non_finite = int(points.shape[0] - np.count_nonzero(finite))
    if closing is not None:
        non_finite += int(np.count_nonzero(finite & ~np.isfinite(closing)))
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    x0, x1, hw = shape.front_offset_m, shape.front_offset_m + shape.lookahead_m, shape.corridor_half_width_m
    s, lateral = along_arc(x, y, curvature)
    if lateral_speeds is not None:
        lateral_speeds = np.asarray(lateral_speeds, dtype=float)
        if lateral_speeds.shape != (points.shape[0],):
            raise ValueError(f"lateral_speeds must have shape ({points.shape[0]},) like the points, "
                             f"got {lateral_speeds.shape}")
        lateral = swept_lateral(s - x0, lateral, lateral_speeds, ego_speed_mps)
    with np.errstate(invalid="ignore"):  # NaN compares False, which already excludes the point
        inside = finite & (z >= shape.corridor_z_min_m) & (z <= shape.corridor_z_max_m) \
            & (s >= x0) & (s <= x1) & (np.abs(lateral) <= hw)
    return CorridorPoints(gaps_m=s[inside] - x0, closing_mps=None if closing is None else closing[inside],
                          non_finite=non_finite, total=int(points.shape[0]))


def time_to_collision(points_xyz: np.ndarray, speed_mps: float, shape: CorridorShape,
                      closing_speeds: np.ndarray | None = None) -> TimeToCollision:
    """Time to collision and gap for one set of points (see CorridorPoints.ttc_and_gap)."""
    kept = corridor_points(points_xyz, shape, closing_speeds)
    ttc, gap = kept.ttc_and_gap(speed_mps)
    return TimeToCollision(ttc, gap, kept.non_finite)
