"""A node main() with clean SIGINT/SIGTERM shutdown and a non-zero exit when start-up fails."""
from __future__ import annotations

import gc
import signal
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException

from .executor import DirectExecutor


def run(node_factory, args=None) -> int:
    return run_nodes([node_factory], args)


def run_nodes(node_factories, args=None, labels: list[str] | None = None) -> int:
    """Create the nodes in order and spin them together in one executor until SIGINT/SIGTERM.
    Several nodes share one process when a graph composes them (msvla_bringup node_container);
    `labels` name them in start-up errors."""
    rclpy.init(args=args)
    # SIGTERM (process managers) shuts down like SIGINT instead of killing mid-callback.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    nodes = []
    try:
        for starting, factory in enumerate(node_factories):
            nodes.append(factory())
            # Managed nodes configure and activate here; with autostart a refused configure (wrong
            # checkpoint or limits) ends the process like any other start-up error.
            problem = nodes[-1].autostart() if hasattr(nodes[-1], "autostart") else ""
            if problem:
                raise RuntimeError(problem)
    except Exception as exc:  # start-up errors (bad parameters, missing checkpoint) end the process
        name = f" {labels[starting]}" if labels else ""
        print(f"[FATAL] cannot start node{name}: {exc}", file=sys.stderr, flush=True)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
        return 1
    freeze_startup_heap()
    executor = DirectExecutor()
    # A graph lists its nodes from the sensors towards the actuators, and the executor serves the
    # ready callbacks of a cycle in the order its nodes were added: added last-listed first, a
    # composed process finishes the set already in its pipeline (VLA, fusion) before it takes new
    # sensor data that arrived at the same time (fusion hop 8-9 instead of 10-12 ms median in the
    # vehicle graph, p99 14-17 instead of 18-27 ms).
    for node in reversed(nodes):
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A message being taken while SIGINT shuts the context down fails inside rclpy with a
        # conversion error; that is a clean shutdown, anything else is a real failure.
        if not _shutting_down():
            raise
    finally:
        executor.shutdown()  # releases the handles it holds before the nodes destroy them
        for node in nodes:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def freeze_startup_heap() -> None:
    """Call once start-up is done. Everything built so far (checkpoints, the simulator, rclpy)
    lives as long as the process; frozen, the cyclic collector's full passes no longer walk it.
    They took 14-50 ms every second or so in the simulator (the LiDAR's ray results are many small
    tuples), each one a latency spike in whatever the process was publishing."""
    gc.collect()
    gc.freeze()


def _shutting_down(wait_s: float = 0.5) -> bool:
    """True once the context is shut down (rclpy's signal handler does it from another thread)."""
    end = time.monotonic() + wait_s
    while rclpy.ok():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True
