"""msvla-record-vehicle: record scripted-expert driving episodes, one rosbag2 bag per episode.

Writes OUTPUT/episode_<seed>/ for seeds seed-start .. seed-start + episodes - 1 with the live
vehicle graph's topics and the expert's labels (see msvla_sim.vehicle_recording), prints one JSON
line per episode and, at the end, episodes/s, KiB per episode, the route-completion rate and the
collisions. Usage:

  msvla-record-vehicle --output bags/vehicle --episodes 100 --seed-start 0 [--format mcap|sqlite3]
                       [--seconds 20] [--kinds follow_lane,drive_slowly,stop_before_obstacle]
                       [--in-lane-fraction 0.5] [--steering-noise 0.1] [--max-initial-speed 6]
"""
from __future__ import annotations

import argparse
import json
import time

from msvla_core.data.bag_types import msvla_typestore
from .vehicle_expert import INSTRUCTION_KINDS
from .recording import episode_dir, prepare_episode_dirs
from .vehicle_recording import MAX_EPISODE_S, PHYSICS_HZ, Perturbation, episode_rng, record_vehicle_episode
from .vehicle_scene import FrontCameraSpec, VehicleScene


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in INSTRUCTION_KINDS]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(INSTRUCTION_KINDS)}, "
                                         f"got {text!r}")
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="directory that receives episode_<seed>/ bags")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--format", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help=f"episode time limit (simulated s, at most {MAX_EPISODE_S:g}); episodes also "
                             f"end at route completion or collision")
    parser.add_argument("--kinds", type=_kinds, default=INSTRUCTION_KINDS,
                        help="instruction kinds to draw from (comma-separated)")
    parser.add_argument("--course-length", type=float, default=100.0, help="road course length (m)")
    parser.add_argument("--lane-width", type=float, default=3.5, help="lane width (m)")
    parser.add_argument("--n-static", type=int, default=-1, help="static obstacles; -1: the scene's seeded default")
    parser.add_argument("--n-moving", type=int, default=-1, help="moving obstacles; -1: the scene's seeded default")
    parser.add_argument("--in-lane-fraction", type=float, default=0.5,
                        help="share of static obstacles standing in the lane (0: the route can be completed)")
    parser.add_argument("--steering-noise", type=float, default=0.0,
                        help="upper end of the per-episode steering perturbation std (rad); the labels stay clean")
    parser.add_argument("--max-initial-speed", type=float, default=0.0, help="initial speed drawn in [0, this] (m/s)")
    parser.add_argument("--forced-stops-per-min", type=float, default=0.0,
                        help="mean rate of forced stops at random times (the car is braked to a standstill and held; "
                             "the labels stay the expert's)")
    parser.add_argument("--stop-for-crossing", type=float, default=0.0,
                        help="probability of a forced stop when a pedestrian ahead starts to cross")
    parser.add_argument("--command-delay", type=float, default=Perturbation.command_delay_s,
                        help="expert decision -> command applied (s), the live graph's latency")
    parser.add_argument("--overwrite", action="store_true", help="replace existing episode bags")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.seed_start < 0:
        parser.error("--seed-start must be >= 0")
    if not 0.0 < args.seconds <= MAX_EPISODE_S:
        parser.error(f"--seconds must be in (0, {MAX_EPISODE_S:g}]")
    if not 0.0 <= args.in_lane_fraction <= 1.0:
        parser.error("--in-lane-fraction must be in [0, 1]")
    try:
        perturbation = Perturbation(command_delay_s=args.command_delay, steering_noise_rad=args.steering_noise,
                                    max_initial_speed_mps=args.max_initial_speed,
                                    forced_stops_per_min=args.forced_stops_per_min,
                                    stop_for_crossing=args.stop_for_crossing)
    except ValueError as exc:
        parser.error(str(exc))

    seeds = range(args.seed_start, args.seed_start + args.episodes)
    problem = prepare_episode_dirs(args.output, seeds, args.overwrite)
    if problem:
        parser.error(problem)

    store = msvla_typestore()
    # The live node's physics rate and camera; the default camera is the scene's 128x96.
    scene = VehicleScene(course_length_m=args.course_length, lane_width_m=args.lane_width,
                         physics_dt_s=1.0 / PHYSICS_HZ, camera=FrontCameraSpec())
    completed = collisions = 0
    started = time.perf_counter()
    try:
        for seed in seeds:
            summary = record_vehicle_episode(
                scene, seed, episode_dir(args.output, seed), episode_rng(seed), seconds=args.seconds,
                kinds=args.kinds, storage=args.format, typestore=store,
                n_static=None if args.n_static < 0 else args.n_static,
                n_moving=None if args.n_moving < 0 else args.n_moving,
                in_lane_fraction=args.in_lane_fraction, perturbation=perturbation)
            completed += int(summary["route_complete"])
            collisions += int(summary["collision"])
            print(json.dumps({k: summary[k] for k in ("seed", "kind", "instruction", "progress_fraction",
                                                      "collision", "lane_departure_steps", "seconds",
                                                      "end")}), flush=True)
    finally:
        scene.close()
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for s in seeds for f in episode_dir(args.output, s).rglob("*") if f.is_file())
    n = args.episodes
    print(f"[record] {n} episodes in {seconds:.1f} s ({n / seconds:.2f} episodes/s), "
          f"{size / n / 1024:.0f} KiB per episode ({args.format}), route completed {completed}/{n} "
          f"({100.0 * completed / n:.0f}%), {collisions} collisions -> {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
