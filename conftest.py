"""Shared fixtures: an isolated ROS domain, a seeded test checkpoint, and in-process spinning."""
from __future__ import annotations

import os
import random
import threading
import time

import pytest

# Each test session gets its own DDS domain so that parallel runs (a demo, another checkout) do
# not see each other's topics; Fast DDS uses the repository's profile.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE",
                      os.path.join(os.path.dirname(__file__), "config", "fastdds.xml"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def test_checkpoint(tmp_path_factory):
    """A freshly initialised (seeded) checkpoint, independent of the shipped weights."""
    import torch

    from msvla_core.models import GraspModelConfig, GraspVLA
    from msvla_core.models.checkpoint import save_pretrained

    torch.manual_seed(1234)
    path = tmp_path_factory.mktemp("checkpoint")
    save_pretrained(GraspVLA(GraspModelConfig()), path)
    return path


class Spinner:
    """Spins nodes in a background executor; `wait_for` polls a condition from the test thread."""

    def __init__(self, nodes):
        from rclpy.executors import MultiThreadedExecutor

        self.executor = MultiThreadedExecutor(num_threads=2)
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


@pytest.fixture(scope="module")
def ros(test_checkpoint):
    """rclpy initialised for one test module, with the test checkpoint as a global parameter."""
    import rclpy

    rclpy.init(args=["--ros-args", "-p", f"checkpoint:={test_checkpoint}",
                     "-p", "camera_to_base:=[0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751]"])
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def spin_nodes():
    spinners = []

    def start(*nodes):
        spinner = Spinner(nodes)
        spinners.append(spinner)
        return spinner

    yield start
    for spinner in spinners:
        spinner.shutdown()


@pytest.fixture
def probe(ros):
    """A test node that publishes inputs and collects outputs."""
    from rclpy.node import Node

    class Probe(Node):
        def __init__(self):
            super().__init__(f"test_probe_{random.randint(0, 1 << 30)}")
            self.received: dict[str, list] = {}

        def collect(self, msg_type, topic, qos):
            self.received[topic] = []
            self.create_subscription(msg_type, topic, self.received[topic].append, qos)
            return self.received[topic]

        def now_stamp(self):
            return self.get_clock().now().to_msg()

    node = Probe()
    yield node
    node.destroy_node()


def wait_for_subscribers(publisher, count: int = 1, timeout_s: float = 10.0) -> None:
    assert Spinner.wait_for(lambda: publisher.get_subscription_count() >= count, timeout_s), \
        f"no subscriber on {publisher.topic_name} after {timeout_s} s"
