"""Safety logic for vehicle commands: whatever arrives, every control tick yields a command inside
every limit.

Vehicle commands are limited rather than rejected where possible: the vehicle needs a command every
tick, and a limited command is closer to what the model wants than braking is. Proposals that cannot
be trusted at all (non-finite, wrong frame or checkpoint, stale, future or out-of-order stamps) are
rejected and never become the target.

Longitudinal model: throttle and brake map to one acceleration a = throttle * throttle_accel -
brake * brake_decel. The acceleration and jerk limits apply to a, which maps back to throttle
(a > 0) or brake (a < 0), so an output never has both. A proposal with both pedals set is read as
braking (brake wins, throttle ignored): of two contradicting pedals, the one that slows is the safe
reading.

Each tick, the first that applies decides the command:
1. safe state (latched fault, emergency stop, inputs not yet healthy) -> braking profile, latched
2. no accepted proposal younger than proposal.max_age_s               -> braking profile
3. collision imminent (time to collision or gap in the corridor)       -> braking profile
4. otherwise the latest accepted proposal, filtered by the speed-scheduled limits.
2 and 3 end by themselves when their cause does; 1 needs `reset()`.

Braking profile: throttle is cut at once; the deceleration ramps from the braking part of the
previous output towards emergency_decel at emergency_jerk and never eases braking that is already
stronger; steering holds the previous output. Once stopped the brake is at least hold_brake (a
step: the one place the profile may exceed emergency_jerk).

Hard limits win over rate limits: when the previous output lies outside the current steering limit
or acceleration cap (the speed rose, the speed became unknown, max_speed was reached), the output
goes straight to the limit instead of ramping there. The exception is braking harder than
max_accel (after shield braking): it is released at max_jerk, since easing off the brake abruptly
is the less safe direction.

Speed unknown (no finite speed received yet): the most restrictive value of each schedule table,
no throttle, and the time to collision as if driving at max_speed_mps.

Heartbeats: `on_speed` feeds the watchdog input ODOMETRY_INPUT with every finite speed, and
`on_obstacles(source, ...)` feeds obstacle_input(source) unless every point was non-finite, each only
if the watchdog watches that input. So a sensor that sends only garbage times out like a silent one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .checks import ProposalChecks, ProposalLimits, require_positive
from .corridor import CorridorPoints, corridor_points, validate_corridor
from .grasp_shield import Decision
from .obstacles import crossing_speeds, radar_targets_in_base
from .supervisor import NS, ShieldState, Supervisor, WatchdogLimits

ODOMETRY_INPUT = "odometry"
MAX_DT_PERIODS = 2.0  # a stalled tick may allow no larger step than two control periods would
# Below this speed yaw rate / speed is mostly odometry noise; the steered arc alone bends the corridor.
YAW_CURVATURE_MIN_SPEED_MPS = 1.0

_TABLES = ("max_steering_rad", "max_steering_rate_radps", "max_accel_mps2", "max_jerk_mps3")


def obstacle_input(source: str) -> str:
    """Watchdog input name that on_obstacles(source, ...) feeds."""
    return f"obstacles/{source}"


@dataclass(frozen=True)
class Schedule:
    """The speed-dependent limits at one speed."""
    max_steering_rad: float
    max_steering_rate_radps: float
    max_accel_mps2: float
    max_jerk_mps3: float


@dataclass
class VehicleLimits:
    # Speed schedule: one value per speed point, linear in between, constant beyond the ends.
    speed_points_mps: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 30.0)
    max_steering_rad: tuple[float, ...] = (0.5, 0.45, 0.3, 0.15, 0.1)
    max_steering_rate_radps: tuple[float, ...] = (0.8, 0.6, 0.4, 0.2, 0.15)
    max_accel_mps2: tuple[float, ...] = (3.0, 3.0, 2.5, 2.0, 1.5)   # |a|, both directions
    max_jerk_mps3: tuple[float, ...] = (6.0, 5.0, 4.0, 3.0, 2.0)
    # Pedal model: a = throttle * throttle_accel - brake * brake_decel.
    throttle_accel_mps2: float = 3.0
    brake_decel_mps2: float = 8.0
    max_speed_mps: float = 15.0          # at or above it (either direction) the throttle is 0
    # Driving corridor (see corridor.py) and collision braking.
    corridor_half_width_m: float = 1.1
    front_offset_m: float = 2.0          # base_link to the front bumper
    wheelbase_m: float = 2.7             # bends the corridor along the steered arc
    lookahead_m: float = 40.0
    corridor_z_min_m: float = 0.2        # below: ground returns
    corridor_z_max_m: float = 2.5        # above: overhead structure
    ttc_brake_s: float = 2.0             # brake below this time to collision
    ttc_release_s: float = 3.0           # ... until it exceeds this (hysteresis)
    min_gap_m: float = 1.0               # brake when closer than this while moving
    max_crossing_speed_mps: float = 2.5  # fastest road user crossing the path (radar crossing hypothesis)
    crossing_min_speed_mps: float = 0.4  # slower radar targets count as static
    radar_velocity_noise_mps: float = 0.05
    # Braking profile of the shield (safe state, no fresh proposal, collision).
    emergency_decel_mps2: float = 6.0
    emergency_jerk_mps3: float = 20.0
    stop_speed_mps: float = 0.1          # |speed| below it counts as stopped
    hold_brake: float = 0.6              # least brake once stopped
    proposal: ProposalLimits = field(default_factory=lambda: ProposalLimits(frame_id="base_link"))

    def __post_init__(self):
        points = self.speed_points_mps = tuple(float(v) for v in self.speed_points_mps)
        if not points:
            raise ValueError("speed_points_mps is empty; it needs at least one speed")
        if not all(math.isfinite(v) and v >= 0.0 for v in points) or any(b <= a for a, b in zip(points, points[1:])):
            raise ValueError(f"speed_points_mps={list(points)} must be finite, >= 0 and strictly increasing")
        for name in _TABLES:
            table = tuple(float(v) for v in getattr(self, name))
            if len(table) != len(points):
                raise ValueError(f"{name}={list(table)} needs {len(points)} values, one per speed point")
            for i, v in enumerate(table):
                if not (math.isfinite(v) and v > 0.0):
                    raise ValueError(f"{name}[{i}]={v} must be finite and > 0")
            setattr(self, name, table)
        require_positive(throttle_accel_mps2=self.throttle_accel_mps2, brake_decel_mps2=self.brake_decel_mps2,
                  max_speed_mps=self.max_speed_mps, ttc_brake_s=self.ttc_brake_s,
                  emergency_decel_mps2=self.emergency_decel_mps2, emergency_jerk_mps3=self.emergency_jerk_mps3,
                  stop_speed_mps=self.stop_speed_mps, wheelbase_m=self.wheelbase_m)
        validate_corridor(self)
        if not (math.isfinite(self.ttc_release_s) and self.ttc_release_s > self.ttc_brake_s):
            raise ValueError(f"ttc_release_s={self.ttc_release_s} must be finite and above "
                             f"ttc_brake_s={self.ttc_brake_s}")
        if not (math.isfinite(self.min_gap_m) and self.min_gap_m >= 0.0):
            raise ValueError(f"min_gap_m={self.min_gap_m} must be finite and >= 0")
        require_positive(max_crossing_speed_mps=self.max_crossing_speed_mps,
                         radar_velocity_noise_mps=self.radar_velocity_noise_mps)
        if not (math.isfinite(self.crossing_min_speed_mps)
                and 0.0 <= self.crossing_min_speed_mps < self.max_crossing_speed_mps):
            raise ValueError(f"crossing_min_speed_mps={self.crossing_min_speed_mps} must be >= 0 and below "
                             f"max_crossing_speed_mps={self.max_crossing_speed_mps}")
        if self.emergency_decel_mps2 > self.brake_decel_mps2:
            raise ValueError(f"emergency_decel_mps2={self.emergency_decel_mps2} exceeds what full brake gives "
                             f"(brake_decel_mps2={self.brake_decel_mps2})")
        if not 0.0 <= self.hold_brake <= 1.0:
            raise ValueError(f"hold_brake={self.hold_brake} must lie in [0, 1]")

    def schedule(self, speed_mps: float | None) -> Schedule:
        """The limits at |speed_mps|; speed unknown (None): the most restrictive value of each table."""
        if speed_mps is None:
            return Schedule(*(min(getattr(self, name)) for name in _TABLES))
        v = abs(speed_mps)
        return Schedule(*(float(np.interp(v, self.speed_points_mps, getattr(self, name))) for name in _TABLES))

    def acceleration(self, throttle: float, brake: float) -> float:
        """Longitudinal acceleration a command asks for (pedal model above)."""
        return throttle * self.throttle_accel_mps2 - brake * self.brake_decel_mps2


@dataclass
class VehicleProposal:
    stamp_ns: int
    frame_id: str
    steering: float   # rad, positive turns left
    throttle: float   # [0, 1]
    brake: float      # [0, 1]
    model_id: str = ""


@dataclass
class VehicleOutput:
    steering: float
    throttle: float
    brake: float
    state: ShieldState
    interventions: list[tuple[str, str]]   # (code, reason): everything that shaped this command
    driven_by: str                         # "model": the filtered proposal; "shield": braking profile
    accel_mps2: float                      # acceleration the command asks for
    speed_mps: float | None                # speed the limits were scheduled at (None: unknown)
    dt_s: float                            # step the rate and jerk limits were applied over
    source_stamp_ns: int | None = None     # stamp of the proposal a "model" command follows


@dataclass(frozen=True)
class _Target:
    stamp_ns: int
    steering: float
    accel_mps2: float
    notes: tuple[tuple[str, str], ...]   # clamps applied when the proposal was accepted


@dataclass(frozen=True)
class _ObstacleSet:
    points: CorridorPoints
    received_ns: int                     # steady clock
    notes: tuple[tuple[str, str], ...]


class VehicleShield:
    def __init__(self, limits: VehicleLimits, watchdog: WatchdogLimits | None = None,
                 control_period_s: float = 0.02):
        require_positive(control_period_s=control_period_s)
        self.limits = limits
        self.control_period_s = control_period_s
        self.supervisor = Supervisor(watchdog or WatchdogLimits())
        self.checks = ProposalChecks(limits.proposal)
        self._target: _Target | None = None
        self._speed: float | None = None
        self._yaw_rate = 0.0
        self._obstacles: dict[str, _ObstacleSet] = {}
        self._collision_braking = False
        self._last_tick_ns: int | None = None
        self._steering = 0.0               # previous output
        self._accel = 0.0                  # acceleration of the previous output
        self._active_codes: set[str] = set()
        self.last_output: VehicleOutput | None = None
        self.passed = 0
        self.rejected = 0
        self.last_interventions: list[tuple[str, str]] = []

    @property
    def counts(self):
        """Interventions by code: per proposal or sensor message for what check/on_speed/on_obstacles
        report, per episode (consecutive ticks) for what tick reports."""
        return self.supervisor.counts

    # ---- inputs ---------------------------------------------------------------------------
    def check(self, p: VehicleProposal, now_ns: int, steady_ns: int | None = None) -> Decision:
        """Accept (possibly clamped) or reject one proposal. `now_ns` is the ROS clock, `steady_ns` a
        monotonic one (defaults to `now_ns`). Steering is limited at the tick, where the speed is known."""
        steady_ns = now_ns if steady_ns is None else steady_ns
        sup = self.supervisor
        sup.proposal_received(steady_ns)
        fields = {"steering": p.steering, "throttle": p.throttle, "brake": p.brake}
        rejections = list(self.checks.problems(fields, p.stamp_ns, p.frame_id, p.model_id, now_ns))
        target = None if rejections else self._as_target(p)
        notes = list(target.notes) if target else []
        sup.record(rejections + notes)
        if not sup.commands_allowed:
            rejections = [(code, f"shield in {sup.state.name}: {reason}") for code, reason in sup.active()] + rejections
        if rejections:
            self.rejected += 1
            self.last_interventions = rejections + notes
            return Decision(False, self.last_interventions)
        self.checks.accepted(p.stamp_ns)
        self._target = target
        self.passed += 1
        self.last_interventions = notes
        return Decision(True, notes)

    def on_speed(self, speed_mps: float, steady_ns: int, yaw_rate_radps: float = 0.0) -> bool:
        """Forward speed (m/s, negative when reversing) and yaw rate (rad/s, positive left) from
        odometry. A non-finite value is ignored (the previous ones stay) and feeds no heartbeat;
        returns whether the values were used."""
        if not (math.isfinite(speed_mps) and math.isfinite(yaw_rate_radps)):
            self.supervisor.record([("speed_non_finite", f"speed={speed_mps}, yaw_rate={yaw_rate_radps} ignored")])
            return False
        self._speed, self._yaw_rate = float(speed_mps), float(yaw_rate_radps)
        self._beat(ODOMETRY_INPUT, steady_ns)
        return True

    def on_radar(self, range_m: np.ndarray, azimuth_rad: np.ndarray, radial_velocity_mps: np.ndarray,
                 steady_ns: int, sensor_to_base) -> int:
        """One radar target list (sensor frame; radial velocity positive away): obstacles with
        their closing speeds and, for targets read as crossing the path, their speeds across each
        arc of the corridor (obstacles.crossing_speeds at the latest odometry). Returns the points
        ignored as non-finite."""
        points, closing = radar_targets_in_base(range_m, azimuth_rad, radial_velocity_mps, sensor_to_base)
        lim = self.limits

        def across(curvature: float) -> np.ndarray:
            return crossing_speeds(points, radial_velocity_mps, sensor_to_base, self._speed or 0.0, self._yaw_rate,
                                   lim.max_crossing_speed_mps, lim.crossing_min_speed_mps,
                                   lim.radar_velocity_noise_mps, curvature)
        return self._store("radar", points, steady_ns, closing, across)

    def on_obstacles(self, source: str, points_xyz: np.ndarray, steady_ns: int,
                     closing_speeds: np.ndarray | None = None, lateral_speeds: np.ndarray | None = None) -> int:
        """Replace the obstacle set of `source` ("lidar", "radar", ...): points (N, 3) in base_link;
        `closing_speeds` (N,) for sensors that measure them (radar, positive = approaching), None for
        a static world (LiDAR: points close at the ego speed); `lateral_speeds` (N,) of points moving
        across the path (corridor module; the same speeds across every arc). Returns how many points
        were ignored as non-finite."""
        return self._store(source, points_xyz, steady_ns, closing_speeds,
                           None if lateral_speeds is None else (lambda curvature: lateral_speeds))

    def _store(self, source: str, points_xyz: np.ndarray, steady_ns: int, closing_speeds: np.ndarray | None,
               across: Callable[[float], np.ndarray] | None) -> int:
        kept = CorridorPoints.union([
            corridor_points(points_xyz, self.limits, closing_speeds, curvature,
                            None if across is None else across(curvature), self._speed or 0.0)
            for curvature in self._path_curvatures()])
        notes: tuple[tuple[str, str], ...] = ()
        if kept.non_finite:
            notes = (("obstacle_non_finite", f"{source}: {kept.non_finite} of {kept.total} points non-finite, "
                                             "ignored"),)
            self.supervisor.record(notes)
        self._obstacles[source] = _ObstacleSet(kept, steady_ns, notes)
        if kept.total == 0 or kept.non_finite < kept.total:
            self._beat(obstacle_input(source), steady_ns)
        return kept.non_finite

    def _path_curvatures(self) -> tuple[float, ...]:
        """The arcs the corridor follows (corridor module): where the commanded wheels lead and,
        moving forward at a speed where yaw rate / speed means something, where the car is
        turning now; with no speed known, the straight path instead of the second."""
        lim = self.limits
        steered = math.tan(self._steering) / lim.wheelbase_m
        speed = self._speed
        if speed is None:
            return tuple(dict.fromkeys((steered, 0.0)))
        if speed < YAW_CURVATURE_MIN_SPEED_MPS:
            return (steered,)
        sharpest = math.tan(max(lim.max_steering_rad)) / lim.wheelbase_m
        return tuple(dict.fromkeys((steered, min(max(self._yaw_rate / speed, -sharpest), sharpest))))

    def reset(self, steady_ns: int) -> tuple[bool, str]:
        ok, message = self.supervisor.reset(steady_ns)
        if ok:  # stamps and targets from before the fault say nothing about what comes next
            self.checks.last_stamp_ns = None
            self._target = None
        return ok, message   # the previous output stays: the next command continues from it

    # ---- control tick ---------------------------------------------------------------------
    def tick(self, now_ns: int, steady_ns: int) -> VehicleOutput:
        """The command for this control period (see the module docstring for the order of rules)."""
        sup = self.supervisor
        sup.tick(steady_ns, now_ns)
        lim = self.limits
        dt = self._step(steady_ns)
        speed = self._speed
        sched = lim.schedule(speed)
        own: list[tuple[str, str]] = []
        if speed is None:
            own.append(("speed_unknown", "no valid speed yet: most restrictive limits, no throttle, time to "
                                         f"collision as if at max_speed {lim.max_speed_mps} m/s"))
        target = self._fresh_target(now_ns, own)
        collision = self._collision(speed, steady_ns)
        if collision:
            own.append(("collision_imminent", collision))
        held = [] if sup.commands_allowed else [(code, f"shield in {sup.state.name}: {reason}")
                                                for code, reason in sup.active()]
        if held or target is None or collision:
            steering, throttle, brake = self._brake(sched, dt, speed, own)
            carried, driven_by = [], "shield"
        else:
            steering, throttle, brake = self._follow(target, sched, dt, speed, own)
            carried, driven_by = list(target.notes), "model"
        for obstacles in self._obstacles.values():
            carried += obstacles.notes
        self._count_episodes(own)
        self._steering, self._accel = steering, lim.acceleration(throttle, brake)
        interventions = held + own + carried
        state = sup.state if held else (ShieldState.INTERVENING if interventions else ShieldState.OK)
        self.last_interventions = interventions
        self.last_output = VehicleOutput(steering, throttle, brake, state, interventions, driven_by,
                                         self._accel, speed, dt,
                                         target.stamp_ns if driven_by == "model" else None)
        return self.last_output

    def _step(self, steady_ns: int) -> float:
        last, self._last_tick_ns = self._last_tick_ns, steady_ns
        if last is None:
            return self.control_period_s
        return min(max((steady_ns - last) / NS, 0.0), MAX_DT_PERIODS * self.control_period_s)

    def _fresh_target(self, now_ns: int, notes: list) -> _Target | None:
        target, max_age = self._target, self.limits.proposal.max_age_s
        if target is None:
            notes.append(("no_fresh_proposal", "no proposal accepted since start or reset"))
            return None
        age_s = (now_ns - target.stamp_ns) / NS
        if age_s > max_age:
            notes.append(("no_fresh_proposal", f"latest proposal is {age_s:.3f} s old (max_age {max_age} s)"))
            return None
        return target

    def _collision(self, speed: float | None, steady_ns: int) -> str | None:
        """Update the collision-braking latch; its reason while it is on."""
        lim = self.limits
        ego_speed = lim.max_speed_mps if speed is None else speed
        ttc = gap = math.inf
        ttc_source = gap_source = "none"
        for source, obstacles in self._obstacles.items():
            t, g = obstacles.points.ttc_and_gap(ego_speed, (steady_ns - obstacles.received_ns) / NS)
            if t < ttc:
                ttc, ttc_source = t, source
            if g < gap:
                gap, gap_source = g, source
        moving = speed is None or abs(speed) > lim.stop_speed_mps
        if ttc < lim.ttc_brake_s or (moving and gap < lim.min_gap_m):
            self._collision_braking = True
        elif ttc > lim.ttc_release_s and gap >= lim.min_gap_m:
            self._collision_braking = False
        if not self._collision_braking:
            return None
        return (f"time to collision {ttc:.2f} s ({ttc_source}), gap {gap:.2f} m ({gap_source}); brakes below "
                f"ttc_brake {lim.ttc_brake_s} s or min_gap {lim.min_gap_m} m while moving, until the time to "
                f"collision exceeds ttc_release {lim.ttc_release_s} s with the gap at least min_gap")

    def _brake(self, sched: Schedule, dt: float, speed: float | None, notes: list) -> tuple[float, float, float]:
        lim = self.limits
        start = min(self._accel, 0.0)   # throttle is cut at once
        accel = start
        if start > -lim.emergency_decel_mps2:
            accel = max(start - lim.emergency_jerk_mps3 * dt, -lim.emergency_decel_mps2)
        _, brake = self._pedals(accel)
        if speed is not None and abs(speed) < lim.stop_speed_mps:
            brake = max(brake, lim.hold_brake)
        steering = self._limit_steering(self._steering, "held steering", sched, speed, notes)
        return steering, 0.0, brake

    def _follow(self, target: _Target, sched: Schedule, dt: float, speed: float | None,
                notes: list) -> tuple[float, float, float]:
        lim = self.limits
        steering = self._limit_steering(target.steering, "steering", sched, speed, notes)
        step = sched.max_steering_rate_radps * dt
        low, high = self._steering - step, self._steering + step
        if not low <= steering <= high:
            notes.append(("steering_rate", f"steering would move {steering - self._steering:+.4f} rad in "
                                           f"{dt * 1e3:.1f} ms, more than max_steering_rate "
                                           f"{sched.max_steering_rate_radps:.3f} rad/s allows"))
            steering = min(max(steering, low), high)
            # the hard limit wins when the previous output lies beyond it
            steering = self._limit_steering(steering, "rate-limited steering", sched, speed, notes)
        max_accel = sched.max_accel_mps2
        accel = target.accel_mps2
        if abs(accel) > max_accel:
            notes.append(("accel_limited", f"acceleration {accel:+.3f} m/s^2 (from throttle/brake) beyond "
                                           f"±{max_accel:.3f} m/s^2 at {_speed_text(speed)}"))
            accel = min(max(accel, -max_accel), max_accel)
        step = sched.max_jerk_mps3 * dt
        low, high = self._accel - step, self._accel + step
        if not low <= accel <= high:
            notes.append(("jerk_limited", f"acceleration would change by {accel - self._accel:+.3f} m/s^2 in "
                                          f"{dt * 1e3:.1f} ms, more than max_jerk {sched.max_jerk_mps3:.3f} "
                                          "m/s^3 allows"))
            accel = min(max(accel, low), high)
        cap = max_accel
        if speed is None:
            cap = 0.0   # the speed_unknown intervention says why
        elif abs(speed) >= lim.max_speed_mps:
            cap = 0.0
            if accel > 0.0:
                notes.append(("speed_limit", f"speed {speed:.2f} m/s at or above max_speed "
                                             f"{lim.max_speed_mps} m/s: no throttle"))
        throttle, brake = self._pedals(min(accel, cap))
        return steering, throttle, brake

    def _limit_steering(self, value: float, what: str, sched: Schedule, speed: float | None, notes: list) -> float:
        limit = sched.max_steering_rad
        if abs(value) <= limit:
            return value
        notes.append(("steering_limited", f"{what}={value:.4f} rad beyond the steering limit ±{limit:.4f} rad "
                                          f"at {_speed_text(speed)}"))
        return math.copysign(limit, value)

    def _pedals(self, accel: float) -> tuple[float, float]:
        """(throttle, brake) for an acceleration; never both non-zero."""
        lim = self.limits
        if accel > 0.0:
            return min(accel / lim.throttle_accel_mps2, 1.0), 0.0
        if accel < 0.0:
            return 0.0, min(-accel / lim.brake_decel_mps2, 1.0)
        return 0.0, 0.0

    def _count_episodes(self, interventions: list[tuple[str, str]]) -> None:
        """Count each tick-level intervention once per run of consecutive ticks it is active in."""
        first: dict[str, str] = {}
        for code, reason in interventions:
            first.setdefault(code, reason)
        self.supervisor.record([(code, reason) for code, reason in first.items() if code not in self._active_codes])
        self._active_codes = set(first)

    def _beat(self, name: str, steady_ns: int) -> None:
        if name in self.supervisor.limits.heartbeat_timeouts_s:
            self.supervisor.heartbeat(name, steady_ns)

    def _as_target(self, p: VehicleProposal) -> _Target:
        notes = []
        throttle, brake = min(max(p.throttle, 0.0), 1.0), min(max(p.brake, 0.0), 1.0)
        if throttle != p.throttle:
            notes.append(("throttle_range", f"throttle={p.throttle:g} outside [0, 1], clamped to {throttle:g}"))
        if brake != p.brake:
            notes.append(("brake_range", f"brake={p.brake:g} outside [0, 1], clamped to {brake:g}"))
        if throttle > 0.0 and brake > 0.0:
            notes.append(("throttle_and_brake", f"throttle={throttle:g} and brake={brake:g} both set: brake "
                                                "wins, throttle ignored"))
            throttle = 0.0
        return _Target(p.stamp_ns, float(p.steering), self.limits.acceleration(throttle, brake), tuple(notes))


def _speed_text(speed: float | None) -> str:
    return "unknown speed" if speed is None else f"{speed:.2f} m/s"
