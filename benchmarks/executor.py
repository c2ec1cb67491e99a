"""Executor cost: msvla_ros.executor.DirectExecutor against rclpy's SingleThreadedExecutor.

The measured process holds seven nodes, as the vehicle graph's composed model process does (each
with parameter services and a 1 Hz timer), subscribed to the vehicle simulator's rates: a 100 Hz
IMU, 50 Hz joint states, 20 Hz radar, and three 10 Hz streams. Another process publishes; every
message carries its send time. Per executor, in the same run and alternating: CPU time of the
measured process per second and per message, and the delay from publish to callback (median, p99).

    python benchmarks/executor.py [--seconds 10] [--rounds 2]

The callbacks do no work, so the figures are the executor's and rclpy's own cost per message; the
graph's nodes add their computation on top (benchmarks/vehicle.py measures the whole graph).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

import numpy as np

STREAMS = {"imu": 100.0, "joint_states": 50.0, "radar": 20.0, "camera": 10.0, "camera_info": 10.0,
           "lidar": 10.0}
NODES = 7
DOMAIN = str(90 + os.getpid() % 100)  # a ROS domain of its own: other graphs cannot mix in


def publisher(seconds: float, ready) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import UInt64

    rclpy.init()
    node = Node("executor_benchmark_publisher")
    for name, rate in STREAMS.items():
        pub = node.create_publisher(UInt64, f"/bench/{name}", 100)
        node.create_timer(1.0 / rate, lambda p=pub: p.publish(UInt64(data=time.monotonic_ns())))
    ready.set()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
    rclpy.try_shutdown()


def measure(executor_name: str, seconds: float) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import UInt64

    from msvla_ros.executor import DirectExecutor
    from msvla_ros.qos_events import PolledQosEvents

    class GraphNode(PolledQosEvents, Node):
        pass

    delays: list[int] = []
    rclpy.init()
    nodes = []
    for i in range(NODES):
        node = GraphNode(f"executor_benchmark_{i}")
        node.create_timer(1.0, lambda: None)  # diagnostics
        nodes.append(node)
    # one subscriber per stream, spread over the nodes as the encoders and fusion are
    for i, name in enumerate(STREAMS):
        nodes[i % NODES].create_subscription(
            UInt64, f"/bench/{name}", lambda msg: delays.append(time.monotonic_ns() - msg.data), 100)
    executor = DirectExecutor() if executor_name == "DirectExecutor" else SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    ready = multiprocessing.get_context("spawn").Event()
    pub = multiprocessing.get_context("spawn").Process(target=publisher, args=(seconds + 6.0, ready))
    pub.start()
    ready.wait(30.0)
    end = time.monotonic() + 3.0  # discovery and warm-up
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
    delays.clear()
    cpu0, wall0 = time.process_time(), time.monotonic()
    end = wall0 + seconds
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    n = len(delays)
    pub.join(30.0)
    executor.shutdown()
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()
    d = np.asarray(delays) / 1e6
    return {"cpu_pct": 100.0 * cpu / wall, "msgs": n, "rate": n / wall, "us_per_msg": 1e6 * cpu / max(n, 1),
            "delay_median": float(np.median(d)), "delay_p99": float(np.percentile(d, 99))}


def child(executor_name: str, seconds: float, queue) -> None:
    queue.put(measure(executor_name, seconds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", DOMAIN)
    expected = sum(STREAMS.values())
    print(f"{NODES} nodes in one process, subscriptions at {', '.join(f'{k} {v:g} Hz' for k, v in STREAMS.items())} "
          f"({expected:g} messages/s) from another process; {args.seconds:g} s per run, {args.rounds} rounds, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name in ("SingleThreadedExecutor", "DirectExecutor"):  # alternate: drift hits both
            queue = ctx.Queue()
            proc = ctx.Process(target=child, args=(name, args.seconds, queue))
            proc.start()
            results.setdefault(name, []).append(queue.get(timeout=args.seconds + 120.0))
            proc.join(30.0)
    print(f"{'executor':24s} {'CPU % of a core':>16s} {'messages/s':>11s} {'CPU us/message':>15s} "
          f"{'delay median / p99 ms':>22s}")
    for name, runs in results.items():
        for r in runs:
            print(f"{name:24s} {r['cpu_pct']:16.1f} {r['rate']:11.1f} {r['us_per_msg']:15.0f} "
                  f"{r['delay_median']:10.3f} / {r['delay_p99']:7.3f}")
    base = np.median([r["cpu_pct"] for r in results["SingleThreadedExecutor"]])
    direct = np.median([r["cpu_pct"] for r in results["DirectExecutor"]])
    print(f"DirectExecutor uses {direct:.1f} % of a core where rclpy's SingleThreadedExecutor uses {base:.1f} % "
          f"({base / max(direct, 1e-9):.1f}x) for the same messages (medians over rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
