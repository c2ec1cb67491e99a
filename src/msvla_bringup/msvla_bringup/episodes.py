"""Drive grasp episodes against a running Franka graph: reset the simulator, give an instruction,
collect the shielded grasps and the outcome. Used by the demo, the graph tests and the benchmark.
SimDriver is the part every robot's episode driver shares (the vehicle's is vehicle_episodes)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from rclpy.node import Node
from std_msgs.msg import Int64, String
from std_srvs.srv import Trigger

from msvla_msgs.msg import GraspPose, SafetyStatus
from msvla_sim.referring import choose_target
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND, LATCHED


@dataclass
class EpisodeResult:
    seed: int
    instruction: str
    target: str | None
    outcome: dict | None  # None: no outcome before the timeout
    first_grasp_latency_ms: float | None
    shield_reset: str = ""  # why the shield had to be reset before this episode (empty: it was OK)

    @property
    def success(self) -> bool:
        """The simulator lifted exactly the object the driver meant (the simulator resolves the
        instruction itself; both must agree)."""
        return bool(self.outcome and self.outcome.get("success") and self.outcome.get("target") == self.target)


@dataclass
class Observed:
    grasps: list[tuple[GraspPose, float]] = field(default_factory=list)  # (msg, latency ms)
    statuses: list[SafetyStatus] = field(default_factory=list)
    outcomes: list[dict] = field(default_factory=list)
    scene: dict | None = None


class SimDriver(Node):
    """What every episode driver does against a running simulated graph: give instructions, reset
    the simulator to a seed, watch the shield and reset it when it latched. `seen` collects what
    arrives; it needs at least `statuses` (SafetyStatus) and `scene` (the latched /sim/scene)."""

    def __init__(self, name: str, seen):
        super().__init__(name)
        self.seen = seen
        self.instruction_pub = self.create_publisher(String, "/msvla/instruction", LATCHED)
        self.reset_pub = self.create_publisher(Int64, "/sim/reset", COMMAND)
        self.create_subscription(String, "/sim/scene", self._on_scene, LATCHED)
        self.create_subscription(SafetyStatus, "/msvla/safety/status", self.seen.statuses.append, COMMAND)
        self.reset_client = self.create_client(Trigger, "/msvla/safety/reset")

    def _on_scene(self, msg: String) -> None:
        self.seen.scene = json.loads(msg.data)

    def spin_until(self, predicate, timeout_s: float, alive_check=None) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.05)
            if alive_check is not None:
                alive_check()
            if predicate():
                return True
        return False

    def call(self, client, timeout_s: float = 10.0, alive_check=None) -> Trigger.Response:
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise TimeoutError(f"service {client.srv_name} not available after {timeout_s} s")
        future = client.call_async(Trigger.Request())
        if not self.spin_until(future.done, timeout_s, alive_check):
            raise TimeoutError(f"service {client.srv_name} did not answer within {timeout_s} s")
        return future.result()

    def reset_shield_if_stopped(self, timeout_s: float = 10.0, alive_check=None, must_succeed: bool = True) -> str:
        """The operator's part between episodes: a shield latched in its safe state (e.g. a sensor
        that stalled on a loaded machine) is reset once its inputs are healthy again. Returns what
        was latched, or "" when it was not. A shield that refuses every reset for `timeout_s` raises
        TimeoutError, unless not `must_succeed` (an input missing by design, as in a sensor
        ablation): then the refusal is returned and the episode runs with the shield stopped."""
        self.spin_until(lambda: False, 0.05, alive_check)  # take in the latest status
        status = self.seen.statuses[-1] if self.seen.statuses else None
        if status is None or status.state < SafetyStatus.STATE_SAFE_STOP:
            return ""
        latched = "; ".join(status.reasons) or "safe state"
        self.get_logger().warn(f"shield latched before the episode ({latched}); resetting it")
        end = time.monotonic() + timeout_s
        while True:
            response = self.call(self.reset_client, timeout_s, alive_check)
            if response.success:
                return latched
            if time.monotonic() > end:
                if not must_succeed:
                    return f"{latched} ({response.message})"
                raise TimeoutError(f"the shield refused every reset for {timeout_s} s: {response.message}")
            self.spin_until(lambda: False, 0.2, alive_check)

    def instruct(self, text: str) -> None:
        self.instruction_pub.publish(String(data=text))

    def reset_scene(self, seed: int, timeout_s: float, alive_check=None) -> dict:
        """Start a simulator episode with `seed`; returns its scene description."""
        previous = self.seen.scene["episode"] if self.seen.scene else -1
        started = time.monotonic()
        while True:
            # resetting to the same seed twice is harmless, so a reset lost in transit is resent
            self.reset_pub.publish(Int64(data=seed))
            if self.spin_until(lambda: self.seen.scene is not None and self.seen.scene["episode"] > previous
                               and self.seen.scene["seed"] == seed, 5.0, alive_check):
                return self.seen.scene
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"the simulator did not start an episode with seed {seed} within {timeout_s} s")


class EpisodeDriver(SimDriver):
    def __init__(self, name: str = "msvla_episode_driver"):
        super().__init__(name, Observed())
        self.proposal_pub = self.create_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
        self.create_subscription(String, "/sim/grasp_outcome", self._on_outcome, COMMAND)
        self.create_subscription(GraspPose, "/msvla/grasp", self._on_grasp, COMMAND)

    def _on_outcome(self, msg: String) -> None:
        self.seen.outcomes.append(json.loads(msg.data))

    def _on_grasp(self, msg: GraspPose) -> None:
        latency_ms = (self.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp)) * 1e-6
        self.seen.grasps.append((msg, latency_ms))

    def wait_for_graph(self, timeout_s: float = 60.0, alive_check=None) -> None:
        """Block until the simulator, the VLA node and the shield are connected to this driver."""
        def ready():
            return (self.reset_pub.get_subscription_count() > 0
                    and self.instruction_pub.get_subscription_count() >= 2  # simulator + VLA node
                    and self.count_publishers("/msvla/grasp") > 0
                    and self.seen.scene is not None)
        if not self.spin_until(ready, timeout_s, alive_check):
            raise TimeoutError(f"graph not connected after {timeout_s} s: reset subscribers "
                               f"{self.reset_pub.get_subscription_count()}, instruction subscribers "
                               f"{self.instruction_pub.get_subscription_count()}, scene "
                               f"{'received' if self.seen.scene else 'missing'}")

    def run_episode(self, seed: int, timeout_s: float = 30.0, alive_check=None,
                    rng: random.Random | None = None) -> EpisodeResult:
        """Reset the simulator to `seed`, instruct it to pick a random object that an instruction
        can name (phrasings of the simulator's split), and wait for the outcome."""
        self.instruct("")
        shield_reset = self.reset_shield_if_stopped(timeout_s, alive_check)
        scene = self.reset_scene(seed, timeout_s, alive_check)
        picker = np.random.default_rng((rng or random.Random(seed)).getrandbits(63))
        chosen, instruction = choose_target(scene, picker, scene.get("split", "train"))
        target = chosen["name"]
        n_grasps, n_outcomes = len(self.seen.grasps), len(self.seen.outcomes)
        self.instruct(instruction)
        self.spin_until(lambda: len(self.seen.outcomes) > n_outcomes, timeout_s, alive_check)
        new_grasps = [lat for g, lat in self.seen.grasps[n_grasps:] if g.instruction == instruction]
        outcome = self.seen.outcomes[n_outcomes] if len(self.seen.outcomes) > n_outcomes else None
        self.instruct("")
        return EpisodeResult(seed, instruction, target, outcome, new_grasps[0] if new_grasps else None,
                             shield_reset)
