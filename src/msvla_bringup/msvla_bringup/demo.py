"""`make demo [ROBOT=vehicle]`: a simulated robot graph following instructions, with a summary table.

Starts the simulator and the node graph as separate processes over ROS 2 and runs a handful of
episodes. Franka: grasping named objects ("pick up the red cube", ...), each outcome and the
end-to-end latency (camera stamp -> shielded grasp received). Vehicle: driving instructions in
turn (follow the lane, drive slowly, stop before the obstacle), per episode the route completed,
collision, lane departure, mean speed and outcome, and the end-to-end latency (sensor stamp of a
proposal -> the shielded command executing it received). Latencies as median and p99.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import rclpy

from .episodes import EpisodeDriver
from .graph import load_graph
from .runner import GraphRunner, NodeProcessDied

GRAPHS = {"franka": "franka_rgbd", "vehicle": "vehicle_multisensor"}
# Simulated seconds a vehicle may stand still before its episode ends (it stopped, or never started).
VEHICLE_STANDSTILL_S = 5.0


def percentile_summary(values: list[float]) -> str:
    if not values:
        return "n/a (no samples)"
    v = np.asarray(values)
    return f"median {np.median(v):.1f} ms, p99 {np.percentile(v, 99):.1f} ms, n={len(v)}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", choices=sorted(GRAPHS), default="franka")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000, help="seed of the first scene")
    parser.add_argument("--timeout", type=float, default=40.0, help="seconds allowed per episode")
    parser.add_argument("--log-dir", default=None, help="node logs (default runs/demo-<time>)")
    args = parser.parse_args(argv)
    log_dir = Path(args.log_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    return (vehicle_demo if args.robot == "vehicle" else franka_demo)(args, log_dir)


def franka_demo(args, log_dir: Path) -> int:
    spec, base = load_graph(GRAPHS[args.robot])
    runner = GraphRunner(spec, base, log_dir, simulation=True)
    print(f"starting graph {spec.name} ({len(runner.nodes)} processes); node logs in {log_dir}/", flush=True)
    rclpy.init()
    driver = EpisodeDriver("msvla_demo")
    results = []
    try:
        runner.start()
        driver.wait_for_graph(alive_check=runner.check)
        rng = random.Random(args.seed)
        for i in range(args.episodes):
            result = driver.run_episode(args.seed + i, args.timeout, runner.check, rng)
            results.append(result)
            o = result.outcome or {}
            print(f"episode {i + 1}/{args.episodes}: {result.instruction!r}: "
                  f"{'SUCCESS' if result.success else 'failure'} (lifted {o.get('lifted', '-')})", flush=True)
    except NodeProcessDied as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        codes = runner.stop()
        driver.destroy_node()
        rclpy.try_shutdown()

    print()
    print(f"{'#':>2}  {'seed':>5}  {'instruction':<34} {'outcome':<8} {'lifted':<22} {'latency':>9}")
    for i, r in enumerate(results, 1):
        o = r.outcome
        status = "timeout" if o is None else ("success" if r.success else "failure")
        lifted = ", ".join(o["lifted"]) if o and o["lifted"] else "-"
        latency = f"{r.first_grasp_latency_ms:.1f} ms" if r.first_grasp_latency_ms is not None else "-"
        print(f"{i:>2}  {r.seed:>5}  {r.instruction:<34} {status:<8} {lifted:<22} {latency:>9}")
    successes = sum(r.success for r in results)
    print(f"\ngrasp success: {successes}/{len(results)}")
    latencies = [lat for _, lat in driver.seen.grasps]
    print(f"end-to-end latency, camera stamp -> shielded grasp ({len(latencies)} grasps): "
          f"{percentile_summary(latencies)}")
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        print(f"WARNING: nodes exited uncleanly: {bad}", file=sys.stderr)
    return 0


def vehicle_demo(args, log_dir: Path) -> int:
    from msvla_sim.vehicle_expert import INSTRUCTION_KINDS

    from .vehicle_episodes import VehicleSession

    spec, base = load_graph(GRAPHS[args.robot])
    print(f"starting graph {spec.name} ({len(spec.selected(simulation=True))} processes); node logs in "
          f"{log_dir}/", flush=True)
    rows = []
    try:
        with VehicleSession(spec, base, None, log_dir, name="msvla_demo") as session:
            for i in range(args.episodes):
                kind = INSTRUCTION_KINDS[i % len(INSTRUCTION_KINDS)]
                row = session.run_episode(args.seed + i, [kind], args.timeout, VEHICLE_STANDSTILL_S)
                rows.append(row)
                print(f"episode {i + 1}/{args.episodes}: {row.instruction!r}: {row.end}, route "
                      f"{100 * row.metrics.route_fraction:.0f} %", flush=True)
            codes = session.close()  # now, for the exit codes; leaving the block then has nothing left to stop
    except NodeProcessDied as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1

    print()
    print(f"{'#':>2}  {'seed':>5}  {'instruction':<50} {'route':>6} {'collision':>9} {'lane dep.':>9} "
          f"{'mean speed':>10}  outcome")
    verdict = {True: "complied", False: "did not comply", None: "not judged (no obstacle in the lane)"}
    for i, r in enumerate(rows, 1):
        m = r.metrics
        speed = f"{m.mean_speed_mps:.1f} m/s" if m.mean_speed_mps is not None else "-"
        print(f"{i:>2}  {r.seed:>5}  {r.instruction:<50} {100 * m.route_fraction:>5.0f}% "
              f"{'yes' if m.collision else 'no':>9} {m.lane_departure_s:>7.1f} s {speed:>10}  "
              f"{r.end}, {verdict[m.compliant]}")
    complied = sum(bool(r.metrics.compliant) for r in rows)
    judged = sum(r.metrics.compliant is not None for r in rows)
    print(f"\ninstruction compliance: {complied}/{judged} judged episodes")
    latencies = [v for r in rows for v in r.metrics.latency_ms]
    print(f"end-to-end latency, sensor stamp -> shielded command executing it ({len(latencies)} proposals): "
          f"{percentile_summary(latencies)}")
    bad = {name: code for name, code in codes.items() if code != 0}
    if bad:
        print(f"WARNING: nodes exited uncleanly: {bad}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
