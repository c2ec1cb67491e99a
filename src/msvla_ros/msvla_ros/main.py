"""A node main() with clean SIGINT/SIGTERM shutdown and a non-zero exit when start-up fails."""
from __future__ import annotations

import signal
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException


def run(node_factory, args=None) -> int:
    rclpy.init(args=args)
    # SIGTERM (process managers) shuts down like SIGINT instead of killing mid-callback.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    try:
        node = node_factory()
        # Managed nodes configure and activate here; with autostart a refused configure (wrong
        # checkpoint or limits) ends the process like any other start-up error.
        problem = node.autostart() if hasattr(node, "autostart") else ""
        if problem:
            raise RuntimeError(problem)
    except Exception as exc:  # start-up errors (bad parameters, missing checkpoint) end the process
        print(f"[FATAL] cannot start node: {exc}", file=sys.stderr, flush=True)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        return 1
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A message being taken while SIGINT shuts the context down fails inside rclpy with a
        # conversion error; that is a clean shutdown, anything else is a real failure.
        if not _shutting_down():
            raise
    finally:
        close = getattr(node, "close", None)
        if close is not None:
            close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _shutting_down(wait_s: float = 0.5) -> bool:
    """True once the context is shut down (rclpy's signal handler does it from another thread)."""
    end = time.monotonic() + wait_s
    while rclpy.ok():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True
