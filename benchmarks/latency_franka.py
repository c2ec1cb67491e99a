"""End-to-end latency of the Franka graph: camera stamp -> shielded grasp received.

Starts the simulator (grasp execution off, so the camera streams continuously) and the graph as
separate processes, gives an instruction, and records for every grasp the receive time minus the
camera stamp it answers, at the proposal topic (before the shield) and at the shield's output.
For comparison, the same preprocessing and model run monolithically in one process on frames
rendered by the same simulator: the latency a single-node deployment would add per frame.

    python benchmarks/latency_franka.py [--seconds 30]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
import torch

from msvla_bringup.episodes import EpisodeDriver
from msvla_bringup.graph import load_graph
from msvla_bringup.runner import GraphRunner
from msvla_core.models.checkpoint import load_pretrained
from msvla_core.models.language import SentenceEncoder
from msvla_core.preprocessing import prepare_depth, prepare_rgb
from msvla_msgs.msg import GraspPose
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND


def stats(name: str, ms: list[float]) -> str:
    if not ms:
        return f"{name:<44} no samples"
    a = np.asarray(ms)
    return (f"{name:<44} n={len(a):>4}  median {np.median(a):6.1f} ms  p90 {np.percentile(a, 90):6.1f} ms  "
            f"p99 {np.percentile(a, 99):6.1f} ms  max {a.max():6.1f} ms")


def graph_latency(seconds: float, base_seed: int) -> tuple[list[float], list[float], int]:
    spec, base = load_graph("franka_rgbd")
    logs = Path(tempfile.mkdtemp(prefix="msvla-latency-"))
    runner = GraphRunner(spec, base, logs, simulation=True, overrides={"franka_sim": {"execute_grasps": False,
                                                                                      "seed": base_seed}})
    rclpy.init()
    driver = EpisodeDriver("latency_benchmark")
    proposals: list[float] = []
    driver.create_subscription(GraspPose, "/msvla/proposal/grasp", lambda m: proposals.append(
        (driver.get_clock().now().nanoseconds - stamp_to_ns(m.header.stamp)) * 1e-6), COMMAND)
    try:
        runner.start()
        driver.wait_for_graph(timeout_s=90.0, alive_check=runner.check)
        objects = driver.seen.scene["objects"]
        driver.instruct(f"pick up the {objects[0]['name']}")
        driver.spin_until(lambda: len(proposals) > 5, 30.0, runner.check)  # warm-up
        proposals.clear()
        driver.seen.grasps.clear()
        driver.spin_until(lambda: False, seconds, runner.check)
        rejected = driver.seen.statuses[-1].rejected if driver.seen.statuses else 0
    finally:
        runner.stop()
        driver.destroy_node()
        rclpy.try_shutdown()
    return proposals, [lat for _, lat in driver.seen.grasps], rejected


def monolithic_latency(frames: int, base_seed: int) -> list[float]:
    """Preprocess + full model forward in one process (threads = graph total of model nodes)."""
    from ament_index_python.packages import get_package_share_directory

    from msvla_sim.camera import CameraSpec
    from msvla_sim.franka_scene import FrankaTabletopScene

    torch.set_num_threads(1)
    model = load_pretrained(Path(get_package_share_directory("msvla_bringup")) / "models" / "franka_rgbd")
    embedding = SentenceEncoder().encode(["pick up the red cube"])
    scene = FrankaTabletopScene(128, 128, camera=CameraSpec())
    scene.reset(base_seed)
    rgb, depth, cam = scene.render()
    camera, to_base = cam.intrinsics, np.asarray(cam.pose)
    out = []
    for i in range(frames + 5):
        t0 = time.perf_counter()
        x_rgb = torch.from_numpy(prepare_rgb(rgb, model.config))[None]
        d_in, geometry = prepare_depth(depth, camera, to_base, model.config)
        with torch.inference_mode():
            model(embedding, x_rgb, torch.from_numpy(d_in)[None], torch.from_numpy(geometry)[None])
        if i >= 5:
            out.append((time.perf_counter() - t0) * 1e3)
    scene.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    proposals, shielded, rejected = graph_latency(args.seconds, args.seed)
    mono = monolithic_latency(200, args.seed)
    print(f"\nFranka RGB-D graph, 128x128 camera at 10 Hz, {args.seconds:.0f} s, 6 processes on {torch.get_num_threads()} "
          f"torch thread(s) per node ({len(proposals)} proposals, {rejected} rejected by the shield)")
    print(stats("graph: camera stamp -> proposal (pre-shield)", proposals))
    print(stats("graph: camera stamp -> shielded grasp", shielded))
    print(stats("monolithic, one process: preprocess + model", mono))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
