"""Scripted driving expert for ``VehicleScene`` and the driving instructions it follows.

The expert has privileged access to the scene (true route, true obstacle states), which is what
makes its demonstrations clean: pure pursuit on the centreline for steering, and a speed target
that is the smallest of the instruction's cruise speed, the speed the curvature ahead allows and
the speed from which the car can still stop short of the first obstacle in its lane (or of the end
of the route). A P controller with a braking feed-forward turns the target into exactly one pedal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .vehicle_scene import Obstacle, VehicleScene, half_across, half_along

INSTRUCTION_KINDS: Tuple[str, ...] = ("follow_lane", "drive_slowly", "stop_before_obstacle")

PHRASINGS: Dict[str, Tuple[str, ...]] = {
    "follow_lane": ("follow the lane", "keep driving along the road", "stay in your lane",
                    "drive along the road", "keep to the lane and carry on"),
    "drive_slowly": ("drive slowly", "go slow along the road", "take it slowly and stay in the lane",
                     "drive carefully at low speed", "follow the road slowly"),
    "stop_before_obstacle": ("stop before the obstacle", "stop in front of the obstacle ahead",
                             "halt before you reach the obstacle", "pull up short of the obstacle",
                             "drive on and stop before the obstacle in the lane"),
}


def sample_instruction(rng: np.random.Generator, kind: Optional[str] = None) -> Tuple[str, str]:
    """(kind, text): a random phrasing of ``kind``, or of a random kind."""
    if kind is None:
        kind = INSTRUCTION_KINDS[int(rng.integers(len(INSTRUCTION_KINDS)))]
    if kind not in PHRASINGS:
        raise ValueError(f"unknown instruction kind {kind!r}; expected one of {INSTRUCTION_KINDS}")
    options = PHRASINGS[kind]
    return kind, options[int(rng.integers(len(options)))]


def instruction_kind(text: str) -> Optional[str]:
    """The kind of a known phrasing (case and surrounding blanks ignored), else None."""
    key = " ".join(text.lower().split())
    for kind, options in PHRASINGS.items():
        if key in options:
            return kind
    return None


@dataclass(frozen=True)
class ExpertParams:
    """Tuning of the scripted driver."""

    cruise_speed_mps: Tuple[Tuple[str, float], ...] = (
        ("follow_lane", 8.0), ("drive_slowly", 4.0), ("stop_before_obstacle", 8.0))
    # Pure pursuit look-ahead: base + gain * speed, clamped.
    lookahead_base_m: float = 3.0
    lookahead_gain_s: float = 0.6
    lookahead_max_m: float = 15.0
    max_lateral_accel_mps2: float = 2.5  # speed on curves
    comfort_decel_mps2: float = 3.0      # planned braking; full brake is far stronger
    speed_gain_per_s: float = 1.5        # P gain: m/s^2 of acceleration per m/s of speed error
    # Gap between the front bumper and an obstacle when stopped for it.
    safety_gap_m: float = 2.5
    stop_before_obstacle_gap_m: float = 5.0
    time_gap_s: float = 1.0              # extra gap per m/s of a lead vehicle's speed
    corridor_margin_m: float = 0.5       # clearance beside the car that counts as blocked
    prediction_horizon_s: float = 2.5    # moving obstacles: about to enter the lane blocks it
    prediction_samples: int = 6
    preview_m: float = 60.0              # how far ahead obstacles and curves are considered
    end_overrun_m: float = 1.5           # aim to stop this far past the route's end
    stop_speed_mps: float = 0.1
    hold_brake: float = 0.4              # brake held while standing


class VehicleExpert:
    """``command(scene) -> (steering, throttle, brake)`` following one instruction kind.

    All kinds keep the lane and stop ``safety_gap_m`` short of obstacles in it (there is no
    overtaking: behind a static obstacle the expert waits), resuming once a moving obstacle has
    left the lane. "drive_slowly" lowers the cruise speed; "stop_before_obstacle" stops
    ``stop_before_obstacle_gap_m`` short of the first static obstacle in the lane and then stays
    stopped, since stopping there is the task (without one it follows the lane).
    """

    def __init__(self, kind: str = "follow_lane", params: ExpertParams = ExpertParams()):
        if kind not in INSTRUCTION_KINDS:
            raise ValueError(f"unknown instruction kind {kind!r}; expected one of {INSTRUCTION_KINDS}")
        self.kind = kind
        self.params = params
        self.cruise_speed_mps = dict(params.cruise_speed_mps)[kind]
        self.reset()

    def reset(self) -> None:
        """Forget the episode (call after ``scene.reset``)."""
        self.holding = False
        self.target_speed_mps = 0.0
        self.blocking_obstacle: Optional[int] = None

    # ------------------------------------------------------------------------------ steering
    def steering(self, scene: VehicleScene) -> float:
        """Pure pursuit from base_link (the rear axle) to the centreline point one look-ahead
        distance beyond the car's projection."""
        p = self.params
        st = scene.vehicle_state()
        s = scene.status().route_s_m
        lookahead = min(p.lookahead_base_m + p.lookahead_gain_s * st.speed_mps, p.lookahead_max_m)
        target, _ = scene.route.pose_at(s + lookahead)
        dx, dy = target[0] - st.x, target[1] - st.y
        c, sn = math.cos(st.yaw), math.sin(st.yaw)
        fx, fy = c * dx + sn * dy, -sn * dx + c * dy
        dist = max(math.hypot(fx, fy), 1e-3)
        alpha = math.atan2(fy, fx)
        delta = math.atan2(2.0 * scene.vehicle.wheelbase_m * math.sin(alpha), dist)
        lim = scene.vehicle.max_steering_rad
        return float(np.clip(delta, -lim, lim))

    # ------------------------------------------------------------------------------ speed
    def _curve_limit(self, scene: VehicleScene, s: float) -> float:
        """Highest speed now from which every curve ahead can be taken at the lateral limit,
        braking comfortably before it."""
        p, route = self.params, scene.route
        step = route.s[1] - route.s[0]
        lo = max(0, int(s / step))
        hi = min(len(route.s), int((s + p.preview_m) / step) + 1)
        if hi <= lo:
            return math.inf
        kappa = np.abs(route.curvature[lo:hi])
        dist = np.maximum(route.s[lo:hi] - s, 0.0)
        v_curve = np.sqrt(p.max_lateral_accel_mps2 / np.maximum(kappa, 1e-6))
        return float(np.min(np.sqrt(v_curve ** 2 + 2.0 * p.comfort_decel_mps2 * dist)))

    def _blocks_lane(self, scene: VehicleScene, ob: Obstacle, corridor: float) -> bool:
        """The obstacle is in the car's corridor now or (moving) will be within the horizon."""
        p, route = self.params, scene.route
        times = [0.0] if not np.any(ob.velocity[:2]) else np.linspace(
            0.0, p.prediction_horizon_s, p.prediction_samples)
        for t in times:
            xy = ob.position[:2] + ob.velocity[:2] * t
            _, lateral, heading = route.project(xy)
            if abs(lateral) - half_across(ob, heading) < corridor:
                return True
        return False

    def _obstacle_limit(self, scene: VehicleScene,
                        s: float) -> Tuple[float, Optional[Obstacle], float, float]:
        """(speed limit, the obstacle that sets it, distance left to the point where the car must
        be down to that obstacle's speed along the road, and that speed)."""
        p, route = self.params, scene.route
        front = s + scene.vehicle.front_bumper_x_m
        corridor = 0.5 * scene.vehicle.width_m + p.corridor_margin_m
        best, best_ob, best_room, best_v = math.inf, None, math.inf, 0.0
        for ob in scene.obstacle_states():
            ob_s, _, heading = route.project(ob.position[:2])
            rear = ob_s - half_along(ob, heading)
            gap = rear - front
            if gap < -half_along(ob, heading) or gap > p.preview_m:
                continue  # behind the bumper or too far to matter
            if not self._blocks_lane(scene, ob, corridor):
                continue
            gap_wanted = (p.stop_before_obstacle_gap_m if self._is_goal(ob) else p.safety_gap_m)
            tangent = np.array([math.cos(heading), math.sin(heading)])
            v_along = max(0.0, float(np.dot(ob.velocity[:2], tangent)))
            room = gap - gap_wanted - p.time_gap_s * v_along
            limit = math.sqrt(max(0.0, v_along ** 2 + 2.0 * p.comfort_decel_mps2 * room)) \
                if room > 0.0 else 0.0
            if limit < best:
                best, best_ob, best_room, best_v = limit, ob, room, v_along
        return best, best_ob, best_room, best_v

    def _is_goal(self, ob: Obstacle) -> bool:
        """Under "stop_before_obstacle" the obstacle meant is a static one in the lane; moving
        obstacles are yielded to as under every instruction."""
        return self.kind == "stop_before_obstacle" and ob.kind == "static"

    def command(self, scene: VehicleScene) -> Tuple[float, float, float]:
        """(steering rad, throttle, brake) for the scene's current state; never both pedals."""
        p = self.params
        st = scene.vehicle_state()
        s = scene.status().route_s_m
        steering = self.steering(scene)

        v_obstacle, blocker, room, v_blocker = self._obstacle_limit(scene, s)
        end_room = scene.route.length_m + p.end_overrun_m - s
        v_end = math.sqrt(2.0 * p.comfort_decel_mps2 * max(0.0, end_room))
        limits = [self.cruise_speed_mps, self._curve_limit(scene, s), v_obstacle, v_end]
        target = min(limits)
        if blocker is not None and self._is_goal(blocker) \
                and st.speed_mps < p.stop_speed_mps and target < p.stop_speed_mps:
            self.holding = True
        if self.holding:
            target = 0.0
        self.target_speed_mps = target
        self.blocking_obstacle = None if blocker is None else blocker.id

        accel = p.speed_gain_per_s * (target - st.speed_mps)
        # Above a braking profile, brake with the deceleration that reaches the obstacle's speed
        # (or a stop) exactly at its point: a P controller alone lags a falling target and would
        # stop late.
        if st.speed_mps > target:
            if v_obstacle <= target + 1e-9 and math.isfinite(room):
                needed = -(st.speed_mps ** 2 - v_blocker ** 2) / (2.0 * max(room, 0.05))
                accel = min(accel, needed)
            if v_end <= target + 1e-9:
                accel = min(accel, -st.speed_mps ** 2 / (2.0 * max(end_room, 0.05)))
        return (steering,) + self._pedals(scene, accel, target, st.speed_mps)

    def _pedals(self, scene: VehicleScene, accel: float, target: float,
                speed: float) -> Tuple[float, float]:
        """One pedal for the wanted acceleration, using the scene's pedal model (rolling resistance
        helps braking and must be overcome by the throttle)."""
        v = scene.vehicle
        if target <= self.params.stop_speed_mps and speed <= self.params.stop_speed_mps:
            return 0.0, self.params.hold_brake
        if accel >= 0.0:
            return float(np.clip((accel + v.rolling_resistance_mps2) / v.throttle_accel_mps2, 0.0, 1.0)), 0.0
        return 0.0, float(np.clip((-accel - v.rolling_resistance_mps2) / v.brake_decel_mps2, 0.0, 1.0))

