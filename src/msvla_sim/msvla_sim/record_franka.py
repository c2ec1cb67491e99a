"""msvla-record-franka: record scripted-expert Franka grasp episodes, one rosbag2 bag per episode.

Writes OUTPUT/episode_<seed>/ for seeds seed-start .. seed-start + episodes - 1 with the live
graph's topics (see msvla_sim.recording) and prints the success rate and episodes/s. The camera
sits at the calibration pose the live simulator uses (plus the per-episode jitter, recorded on
/camera/extrinsics), so recorded images match live ones.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from msvla_core.data.bag_types import msvla_typestore
from .catalogue import SCENE_SETS, SPLITS
from .expert import make_scene, read_camera_to_base
from .sensor_model import CameraJitter, SensorNoise

from .recording import episode_dir, prepare_episode_dirs, record_episode


def episode_rng(seed: int) -> np.random.Generator:
    """Target and phrasing stream of an episode; separate from the scene layout's stream."""
    return np.random.default_rng([int(seed), 3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="directory that receives episode_<seed>/ bags")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed-start", type=int, default=100000)
    parser.add_argument("--frames", type=int, default=3, help="camera frames per episode")
    parser.add_argument("--rate-hz", type=float, default=10.0, help="synthetic camera rate")
    parser.add_argument("--format", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--calibration", default="config/franka/calibration.yaml",
                        help="camera calibration parameter file of the graph (camera_to_base)")
    parser.add_argument("--width", type=int, default=128, help="image width (px)")
    parser.add_argument("--height", type=int, default=128, help="image height (px)")
    parser.add_argument("--n-objects", type=int, default=0, help="objects per scene; 0: random")
    parser.add_argument("--scene-set", choices=sorted(SCENE_SETS), default="cluttered",
                        help="basic: 3-6 distinct primitives; cluttered: 5-8 mixed objects, repeated colours")
    parser.add_argument("--split", choices=SPLITS, default="train",
                        help="heldout: toy meshes and instruction phrasings no training episode uses")
    parser.add_argument("--clean-sensors", action="store_true",
                        help="no depth noise/holes, no RGB noise, no camera pose jitter")
    parser.add_argument("--overwrite", action="store_true", help="replace existing episode bags")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.frames < 1:
        parser.error("--frames must be >= 1")
    if args.seed_start < 0:
        parser.error("--seed-start must be >= 0")
    if not args.rate_hz > 0:
        parser.error("--rate-hz must be positive")

    seeds = range(args.seed_start, args.seed_start + args.episodes)
    problem = prepare_episode_dirs(args.output, seeds, args.overwrite)
    if problem:
        parser.error(problem)

    store = msvla_typestore()
    noisy = not args.clean_sensors
    scene = make_scene(args.width, args.height, read_camera_to_base(args.calibration),
                       scene_set=args.scene_set, split=args.split,
                       noise=SensorNoise() if noisy else None, jitter=CameraJitter() if noisy else None)
    successes = 0
    started = time.perf_counter()
    try:
        for i, seed in enumerate(seeds):
            summary = record_episode(scene, seed, episode_dir(args.output, seed), episode_rng(seed),
                                     frames=args.frames, rate_hz=args.rate_hz, storage=args.format,
                                     n_objects=args.n_objects or None, typestore=store,
                                     phrasing=args.split)
            successes += int(bool(summary["success"]))
            print(json.dumps({"seed": seed, "instruction": summary["instruction"],
                              "success": summary["success"]}), flush=True)
    finally:
        scene.close()
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for s in seeds for f in episode_dir(args.output, s).rglob("*") if f.is_file())
    print(f"[record] {args.episodes} episodes in {seconds:.1f} s ({args.episodes / seconds:.2f} episodes/s), "
          f"{successes}/{args.episodes} successful, {size / args.episodes / 1024:.0f} KiB per episode "
          f"({args.format}) -> {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
