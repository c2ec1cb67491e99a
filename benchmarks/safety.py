"""Cost of the safety shield's logic per proposal, per control tick and per obstacle scan.

The shield runs every check on every proposal (envelope, geometry, rate and jump limits, watchdog)
and, for a vehicle, a full control tick at the command rate plus a corridor pass over each LiDAR
scan. For comparison, in the same run: the check a user would otherwise write (finite values
inside a workspace box / clamping each command field to its range), which has none of the state.
End-to-end proposal -> shielded output latency over DDS is in latency_franka.py.

    python benchmarks/safety.py [--n 20000]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from msvla_core.safety import (GraspLimits, GraspProposal, GraspShield, VehicleLimits, VehicleProposal,
                               VehicleShield, WatchdogLimits)
from msvla_core.safety.vehicle_shield import ODOMETRY_INPUT, obstacle_input

MS = 1_000_000
DOWN = (1.0, 0.0, 0.0, 0.0)


def stats(name: str, seconds: list[float]) -> str:
    us = np.asarray(seconds) * 1e6
    return (f"{name:<58} n={len(us):>6}  median {np.median(us):8.2f} us  p99 {np.percentile(us, 99):8.2f} us  "
            f"max {us.max():9.2f} us")


def timed(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - t0)
    return out


def grasp_benchmark(n: int, rng: np.random.Generator) -> None:
    watchdog = WatchdogLimits(heartbeat_timeouts_s={"vla": 0.5, "sensor/rgb": 1.0, "sensor/depth": 1.0},
                              max_proposal_rate_hz=1e6)
    shield = GraspShield(GraspLimits(max_update_rate_hz=1e6, max_jump_m=10.0), watchdog)
    now = 10**12
    for name in watchdog.heartbeat_timeouts_s:
        shield.supervisor.heartbeat(name, now)
    shield.tick(now, now)
    positions = rng.uniform([0.2, -0.4, -0.02], [0.85, 0.4, 0.5], size=(n, 3))
    proposals = [GraspProposal(stamp_ns=now + i * MS, frame_id="panda_link0", position=tuple(p), orientation=DOWN,
                               width=0.04, score=0.9, model_id="m", instruction="pick up the red cube")
                 for i, p in enumerate(positions)]
    state = {"i": 0}

    def check(p):
        t = now + state["i"] * MS
        state["i"] += 1
        for name in watchdog.heartbeat_timeouts_s:  # inputs stay healthy, as on a running robot
            shield.supervisor.heartbeat(name, t)
        shield.check(p, t + MS, t)

    lo, hi = np.array(GraspLimits().workspace_min), np.array(GraspLimits().workspace_max)

    def box_only(p):
        v = np.array([*p.position, *p.orientation, p.width])
        return bool(np.all(np.isfinite(v)) and np.all((lo <= v[:3]) & (v[:3] <= hi)))

    shielded = timed(check, proposals)
    print(stats("grasp: GraspShield.check (all limits + watchdog)", shielded))
    print(stats("grasp: baseline finite + workspace box", timed(box_only, proposals)))
    print(f"  accepted {shield.passed} / rejected {shield.rejected} of {n} random proposals")


def vehicle_benchmark(n: int, rng: np.random.Generator, lidar_points: int) -> None:
    watchdog = WatchdogLimits(heartbeat_timeouts_s={"vla": 1.0, ODOMETRY_INPUT: 1.0,
                                                     obstacle_input("lidar"): 1.0}, max_proposal_rate_hz=1e6)
    limits = VehicleLimits()
    shield = VehicleShield(limits, watchdog, control_period_s=0.02)
    now = 10**12
    shield.on_speed(8.0, now)
    shield.supervisor.heartbeat("vla", now)
    scan = rng.uniform([-40.0, -40.0, -1.5], [60.0, 40.0, 3.0], size=(lidar_points, 3))
    shield.on_obstacles("lidar", scan, now)
    shield.tick(now, now)
    commands = rng.uniform([-0.6, 0.0, 0.0], [0.6, 1.0, 0.3], size=(n, 3))
    state = {"i": 0}

    def step(c):
        t = now + state["i"] * 20 * MS
        state["i"] += 1
        shield.supervisor.heartbeat("vla", t)
        shield.on_speed(8.0, t)
        shield.check(VehicleProposal(stamp_ns=t, frame_id="base_link", steering=float(c[0]),
                                     throttle=float(c[1]), brake=float(c[2]), model_id="m"), t, t)
        shield.tick(t + MS, t + MS)
        shield.supervisor.heartbeat(obstacle_input("lidar"), t)

    def clamp_only(c):
        steering = min(max(float(c[0]), -0.5), 0.5)
        throttle, brake = min(max(float(c[1]), 0.0), 1.0), min(max(float(c[2]), 0.0), 1.0)
        return steering, throttle, brake if math.isfinite(steering) else 1.0

    print(stats("vehicle: check + tick (limits, schedule, TTC, watchdog)", timed(step, commands)))
    print(stats("vehicle: baseline clamp of each field", timed(clamp_only, commands)))
    scans = [rng.uniform([-40.0, -40.0, -1.5], [60.0, 40.0, 3.0], size=(lidar_points, 3)) for _ in range(200)]
    print(stats(f"vehicle: on_obstacles, LiDAR scan of {lidar_points} points",
                timed(lambda s: shield.on_obstacles("lidar", s, now), scans)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="proposals / ticks per measurement")
    parser.add_argument("--lidar-points", type=int, default=30000, help="points per synthetic LiDAR scan")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    grasp_benchmark(args.n, rng)
    vehicle_benchmark(args.n, rng, args.lidar_points)


if __name__ == "__main__":
    main()
