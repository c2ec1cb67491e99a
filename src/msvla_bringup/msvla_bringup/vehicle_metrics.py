"""Driving metrics of one closed-loop vehicle episode, and their aggregation over episodes.

Input is what an episode driver records (vehicle_episodes): the simulator's status reports
(/sim/vehicle_status JSON) and scene description (/sim/scene JSON), odometry speed (/odom), the
commands the vehicle executed (/msvla/vehicle/command), the VLA's proposals and the shield's
states. Pure logic (numpy only), so every number of the evaluation is unit-tested without ROS.

Derivatives (acceleration, jerk) are least-squares slopes over a window rather than finite
differences: odometry stamps are taken when the simulator publishes, up to one physics step
(10 ms) away from the simulated instant of the speed they carry, and at 50 Hz a finite difference
turns that jitter alone into jerk of the order of 100 m/s^3. Over a 0.3 s window it averages out,
so the jerk measures the drive, resolved at that window.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from msvla_sim.vehicle_expert import INSTRUCTION_KINDS
from msvla_sim.vehicle_scene import Obstacle, half_along

from .stats import wilson_interval

NS = 1e-9
STATE_SAFE_STOP = 2  # msvla_msgs/SafetyStatus.STATE_SAFE_STOP; STATE_EMERGENCY (3) is above it


@dataclass(frozen=True)
class Criteria:
    """When a drive complies with its instruction, and how signals are differentiated."""

    slow_speed_mps: float = 5.0          # drive_slowly: mean speed while moving at most this
    moving_speed_mps: float = 0.5        # faster than this counts as moving
    stop_speed_mps: float = 0.2          # slower than this counts as stopped
    stop_gap_m: tuple[float, float] = (1.0, 10.0)  # stop_before_obstacle: front bumper to obstacle
    derivative_window_s: float = 0.3     # least-squares window of acceleration and jerk
    max_sample_gap_s: float = 0.2        # samples further apart start a new stretch (a stall, a drop)

    def __post_init__(self):
        lo, hi = self.stop_gap_m
        if not 0.0 <= lo < hi:
            raise ValueError(f"stop_gap_m must be [low, high] with 0 <= low < high, got {list(self.stop_gap_m)}")
        if min(self.slow_speed_mps, self.moving_speed_mps, self.stop_speed_mps, self.derivative_window_s,
               self.max_sample_gap_s) <= 0.0:
            raise ValueError("speeds, derivative_window_s and max_sample_gap_s must be > 0")


@dataclass(frozen=True)
class Command:
    """One command the vehicle executed (/msvla/vehicle/command)."""

    stamp_ns: int
    received_ns: int
    steering: float
    throttle: float
    brake: float
    model_id: str  # empty: the shield's own braking profile


@dataclass
class EpisodeTrace:
    """Everything recorded between the instruction and the end of one episode."""

    kind: str                            # instruction kind (msvla_sim.vehicle_expert.INSTRUCTION_KINDS)
    scene: dict                          # /sim/scene of the episode
    statuses: list[dict]                 # /sim/vehicle_status of the episode, in order
    odometry: list[tuple[int, float]] = field(default_factory=list)   # (header stamp ns, forward speed m/s)
    commands: list[Command] = field(default_factory=list)
    proposals: list[tuple[int, int]] = field(default_factory=list)    # (header stamp ns, received ns)
    shield_states: list[int] = field(default_factory=list)            # SafetyStatus.state, in order


@dataclass
class EpisodeMetrics:
    route_fraction: float                # largest fraction of the route reached
    route_complete: bool
    collision: bool
    lane_departure_s: float              # simulated time with the car beyond its lane
    mean_speed_mps: float | None         # time-weighted, over the episode
    moving_speed_mps: float | None       # time-weighted, while moving (None: never moved)
    jerk_rms: float | None               # longitudinal, m/s^3
    jerk_p95: float | None               # 95th percentile of |jerk|
    steering_rate_rms: float | None      # of the executed commands, rad/s
    stop_gap_m: float | None             # final front-bumper gap to the first static obstacle in the lane
    compliant: bool | None               # None: this scene cannot judge the instruction
    latency_ms: list[float]              # sensor stamp of a proposal -> its first executed command
    model_driven: float | None           # share of executed commands that carry a model id
    shield_stopped: float | None         # share of shield statuses in SAFE_STOP or EMERGENCY


@dataclass
class DriveRow:
    """One evaluated episode: what was asked, how it ended, what it measured."""

    seed: int
    kind: str
    instruction: str
    end: str                             # route_complete, collision, stopped, timeout
    seconds: float                       # wall time of the episode
    metrics: EpisodeMetrics
    shield_reset: str = ""               # what the shield had latched before the episode


# ------------------------------------------------------------------------------- signals
def stretches(t: np.ndarray, max_gap_s: float) -> list[slice]:
    """Index ranges of `t` (seconds, increasing) without a gap longer than `max_gap_s`."""
    if len(t) == 0:
        return []
    cuts = np.flatnonzero(np.diff(t) > max_gap_s) + 1
    bounds = [0, *cuts.tolist(), len(t)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def local_slope(t: np.ndarray, y: np.ndarray, window_s: float) -> np.ndarray:
    """Least-squares slope of y over t in a window centred on every sample (nan with fewer than
    three samples in it)."""
    half = 0.5 * window_s
    out = np.full(len(t), np.nan)
    lo = np.searchsorted(t, t - half, side="left")
    hi = np.searchsorted(t, t + half, side="right")
    for i, (a, b) in enumerate(zip(lo, hi)):
        if b - a >= 3:
            tt, yy = t[a:b] - t[a:b].mean(), y[a:b]
            denom = float(np.dot(tt, tt))
            if denom > 0.0:
                out[i] = float(np.dot(tt, yy - yy.mean())) / denom
    return out


def longitudinal_jerk(odometry: list[tuple[int, float]], criteria: Criteria) -> np.ndarray:
    """Jerk samples (m/s^3): the slope of the slope of odometry speed, per gap-free stretch."""
    samples = _sorted_unique(odometry)
    if len(samples) == 0:
        return np.empty(0)
    t, v = samples[:, 0] * NS, samples[:, 1]
    jerks = []
    for part in stretches(t, criteria.max_sample_gap_s):
        accel = local_slope(t[part], v[part], criteria.derivative_window_s)
        ok = np.isfinite(accel)
        jerk = local_slope(t[part][ok], accel[ok], criteria.derivative_window_s)
        jerks.append(jerk[np.isfinite(jerk)])
    return np.concatenate(jerks) if jerks else np.empty(0)


def steering_rate_rms(commands: list[Command], max_gap_s: float) -> float | None:
    """Time-weighted RMS of the steering rate between consecutive executed commands, by header
    stamp (the publisher's clock: DDS delivery jitter does not turn into rate)."""
    samples = _sorted_unique([(c.stamp_ns, c.steering) for c in commands])
    if len(samples) < 2:
        return None
    dt = np.diff(samples[:, 0]) * NS
    ds = np.diff(samples[:, 1])
    ok = dt <= max_gap_s
    if not ok.any():
        return None
    return float(math.sqrt(np.sum(ds[ok] ** 2 / dt[ok]) / np.sum(dt[ok])))


def mean_speeds(odometry: list[tuple[int, float]], criteria: Criteria) -> tuple[float | None, float | None]:
    """(time-weighted mean speed, the same while moving), over gap-free intervals (trapezoids)."""
    samples = _sorted_unique(odometry)
    if len(samples) < 2:
        return None, None
    dt = np.diff(samples[:, 0]) * NS
    v = 0.5 * (samples[1:, 1] + samples[:-1, 1])
    ok = dt <= criteria.max_sample_gap_s
    if not ok.any():
        return None, None
    moving = ok & (v > criteria.moving_speed_mps)
    mean = float(np.sum(v[ok] * dt[ok]) / np.sum(dt[ok]))
    return mean, (float(np.sum(v[moving] * dt[moving]) / np.sum(dt[moving])) if moving.any() else None)


def _sorted_unique(pairs) -> np.ndarray:
    """(stamp, value) pairs as an array sorted by stamp, repeated stamps dropped."""
    if len(pairs) == 0:
        return np.empty((0, 2))
    a = np.asarray(sorted(pairs, key=lambda p: p[0]), dtype=float)
    keep = np.concatenate([[True], np.diff(a[:, 0]) > 0])
    return a[keep]


def proposal_latencies_ms(proposals: list[tuple[int, int]], commands: list[Command]) -> list[float]:
    """For each proposal, its sensor stamp -> receipt of the first model-driven command after it and
    before the next proposal (the command that executes it). Without a shield the commands are the
    proposals and each matches itself."""
    executed = np.array(sorted(c.received_ns for c in commands if c.model_id), dtype=np.int64)
    ordered = sorted(proposals, key=lambda p: p[1])
    out = []
    for i, (stamp, received) in enumerate(ordered):
        j = np.searchsorted(executed, received, side="left")
        if j == len(executed):
            break
        if i + 1 < len(ordered) and executed[j] >= ordered[i + 1][1]:
            continue  # not executed (rejected, or the shield was stopped)
        out.append((int(executed[j]) - stamp) * 1e-6)
    return out


# ------------------------------------------------------------------------------- scene
def first_lane_obstacle(scene: dict) -> dict | None:
    """The static obstacle in the lane nearest the start of the route (None: there is none)."""
    ahead = [o for o in scene["obstacles"] if o["kind"] == "static" and o["in_lane"] and o["route_s"] is not None]
    return min(ahead, key=lambda o: o["route_s"]) if ahead else None


def road_heading(route: dict, s: float) -> float:
    """Heading of the centreline at arc length `s`, from the scene's polyline."""
    points = np.asarray(route["polyline"], dtype=float)
    i = int(np.clip(s // route["polyline_every_m"], 0, len(points) - 2))
    d = points[i + 1] - points[i]
    return math.atan2(d[1], d[0])


def stop_gap(scene: dict, obstacle: dict, route_s: float) -> float:
    """Gap along the road from the front bumper (base_link at `route_s`) to the obstacle's near side."""
    ob = Obstacle(id=obstacle["id"], kind=obstacle["kind"], shape=obstacle["shape"], size=tuple(obstacle["size"]),
                  colour=obstacle["colour"], position=np.asarray(obstacle["position"]), yaw=obstacle["yaw"])
    near_side = obstacle["route_s"] - half_along(ob, road_heading(scene["route"], obstacle["route_s"]))
    vehicle = scene["vehicle"]
    return near_side - (route_s + vehicle["length_m"] - vehicle["rear_overhang_m"])


# ------------------------------------------------------------------------------- episode
def compliance(kind: str, m: EpisodeMetrics, final_speed_mps: float, criteria: Criteria) -> bool | None:
    """Whether the drive did what was asked:
    follow_lane: the route completed without a collision; drive_slowly: that, at a mean speed while
    moving of at most slow_speed_mps; stop_before_obstacle: no collision and standing (slower than
    stop_speed_mps) at the end with the bumper stop_gap_m short of the first static obstacle in
    the lane (None when the scene has none)."""
    if kind == "follow_lane":
        return m.route_complete and not m.collision
    if kind == "drive_slowly":
        return (m.route_complete and not m.collision and m.moving_speed_mps is not None
                and m.moving_speed_mps <= criteria.slow_speed_mps)
    if kind == "stop_before_obstacle":
        if m.stop_gap_m is None:
            return None
        lo, hi = criteria.stop_gap_m
        return not m.collision and final_speed_mps < criteria.stop_speed_mps and lo <= m.stop_gap_m <= hi
    raise ValueError(f"unknown instruction kind {kind!r}; expected one of {INSTRUCTION_KINDS}")


def episode_metrics(trace: EpisodeTrace, criteria: Criteria = Criteria()) -> EpisodeMetrics:
    if not trace.statuses:
        raise ValueError("no /sim/vehicle_status of the episode: nothing to measure")
    last = trace.statuses[-1]
    jerk = longitudinal_jerk(trace.odometry, criteria)
    mean_speed, moving_speed = mean_speeds(trace.odometry, criteria)
    obstacle = first_lane_obstacle(trace.scene)
    n_commands = len(trace.commands)
    m = EpisodeMetrics(
        route_fraction=float(max(s["progress_fraction"] for s in trace.statuses)),
        route_complete=any(s["route_complete"] for s in trace.statuses),
        collision=any(s["collision"] for s in trace.statuses),
        lane_departure_s=float(last["lane_departure_steps"] * trace.scene["physics_dt_s"]),
        mean_speed_mps=mean_speed, moving_speed_mps=moving_speed,
        jerk_rms=float(np.sqrt(np.mean(jerk ** 2))) if len(jerk) else None,
        jerk_p95=float(np.percentile(np.abs(jerk), 95)) if len(jerk) else None,
        steering_rate_rms=steering_rate_rms(trace.commands, criteria.max_sample_gap_s),
        stop_gap_m=None if obstacle is None else float(stop_gap(trace.scene, obstacle, last["route_s_m"])),
        compliant=None,
        latency_ms=proposal_latencies_ms(trace.proposals, trace.commands),
        model_driven=sum(bool(c.model_id) for c in trace.commands) / n_commands if n_commands else None,
        shield_stopped=(sum(s >= STATE_SAFE_STOP for s in trace.shield_states) / len(trace.shield_states)
                        if trace.shield_states else None))
    m.compliant = compliance(trace.kind, m, float(last["speed_mps"]), criteria)
    return m


# ------------------------------------------------------------------------------- aggregate
def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def _rate(successes: int, n: int) -> dict:
    lo, hi = wilson_interval(successes, n)
    return {"count": successes, "n": n, "rate": successes / n if n else None, "wilson95": [lo, hi]}


def summarize(rows: list[DriveRow]) -> dict:
    """Rates with 95 % Wilson intervals, means of the per-episode metrics, latency pooled over all
    executed proposals (median, p99)."""
    ms = [r.metrics for r in rows]
    judged = [m.compliant for m in ms if m.compliant is not None]
    latency = [v for m in ms for v in m.latency_ms]
    return {
        "episodes": len(rows),
        "route_completion_mean": _mean(m.route_fraction for m in ms),
        "completed": _rate(sum(m.route_complete for m in ms), len(ms)),
        "collisions": _rate(sum(m.collision for m in ms), len(ms)),
        "compliance": _rate(sum(judged), len(judged)),
        "lane_departure_s_mean": _mean(m.lane_departure_s for m in ms),
        "jerk_rms_mean": _mean(m.jerk_rms for m in ms),
        "jerk_p95_mean": _mean(m.jerk_p95 for m in ms),
        "steering_rate_rms_mean": _mean(m.steering_rate_rms for m in ms),
        "mean_speed_mps": _mean(m.mean_speed_mps for m in ms),
        "stop_gap_m_median": _median(m.stop_gap_m for m in ms),
        "model_driven_mean": _mean(m.model_driven for m in ms),
        "shield_stopped_mean": _mean(m.shield_stopped for m in ms),
        "latency_ms_median": float(np.median(latency)) if latency else None,
        "latency_ms_p99": float(np.percentile(latency, 99)) if latency else None,
        "latency_samples": len(latency),
        "seconds_per_episode": _mean(r.seconds for r in rows),
        "ends": {end: sum(r.end == end for r in rows) for end in sorted({r.end for r in rows})},
    }
