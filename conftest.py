"""Shared fixtures: an isolated ROS domain, a seeded test checkpoint, and in-process spinning."""
from __future__ import annotations

import importlib.util
import os
import random
import pytest

# launch_testing tests (src/*/test/launch/) run with `colcon test` on ROS 2 machines; the PyPI ROS
# wheels this workspace also runs on have no launch_testing, so pytest leaves them out there.
collect_ignore_glob = [] if importlib.util.find_spec("launch_testing") else ["src/*/test/launch/*"]

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


@pytest.fixture(scope="module")
def ros(test_checkpoint):
    """rclpy initialised for one test module, with the test checkpoint as a global parameter."""
    import rclpy

    rclpy.init(args=["--ros-args", "-p", f"checkpoint:={test_checkpoint}",
                     "-p", "camera_to_base:=[0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751]",
                     # a loaded test machine may take longer than the robot's 0.5 s to pass a message on
                     "-p", "max_age:=5.0"])
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def spin_nodes():
    from msvla_ros.testing import Spinner

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
