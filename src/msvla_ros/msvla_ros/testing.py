"""Helpers for tests that run nodes in-process with real rclpy publishers and subscribers."""
from __future__ import annotations

import threading
import time


class Spinner:
    """Spins nodes in a background executor; `wait_for` polls a condition from the test thread."""

    def __init__(self, nodes):
        from .executor import DirectExecutor

        # One spinning thread: more threads starve the test thread of the GIL, so its publishes
        # and checks lag by seconds on a 2-core machine. The executor is the one the graph's
        # processes run (msvla_ros.main).
        self.executor = DirectExecutor()
        for node in nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    @staticmethod
    def wait_for(predicate, timeout_s: float = 10.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def shutdown(self):
        self.executor.shutdown()
        self.thread.join(timeout=5)


def wait_for_subscribers(publisher, count: int = 1, timeout_s: float = 10.0) -> None:
    assert Spinner.wait_for(lambda: publisher.get_subscription_count() >= count, timeout_s), \
        f"no subscriber on {publisher.topic_name} after {timeout_s} s"
