"""Drive vehicle episodes against a running vehicle graph and measure them.

VehicleEpisodeDriver resets the simulator to a seed, gives a driving instruction and records, until
the episode ends, the simulator's status and odometry, the commands the vehicle executes, the VLA's
proposals and the shield's states; vehicle_metrics turns that into numbers. VehicleSession starts
a graph variant once (shield on or off, sensors ablated; graph_variants) and serves many episodes.

An episode ends when the simulator reports it done (route completed or collision), when the car has
stood still for `standstill_s` of simulated time (a stop, or a car that never starts: waiting out
the timeout would only cost time; the standing time counts only once the car has moved or after
START_GRACE_S, so a graph that takes a moment to answer a new instruction is not called stopped),
or at `timeout_s`.

End-to-end latency: a proposal carries the oldest sensor stamp of its fused set, and so does every
shielded command that follows it; the driver records proposals too and the latency runs from a
proposal's stamp to the first model-driven command received after it (with the shield off: the
proposal itself) (vehicle_metrics.proposal_latencies_ms).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from nav_msgs.msg import Odometry
from std_msgs.msg import String

from msvla_msgs.msg import SafetyStatus, VehicleCommand
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND, SENSOR
from msvla_sim.vehicle_expert import sample_instruction

from .closed_loop import ClosedLoopError, GraphSession
from .episodes import SimDriver
from .graph import GraphSpec
from .graph_variants import VEHICLE_COMMAND_TOPIC, VEHICLE_PROPOSAL_TOPIC, model_nodes
from .vehicle_metrics import Command, Criteria, DriveRow, EpisodeTrace, episode_metrics

SHIELD_STATUS_TOPIC = "/msvla/safety/status"
# Simulated seconds after the start of an episode before a car that has not moved yet counts as standing.
START_GRACE_S = 5.0


@dataclass
class VehicleObserved:
    statuses: list[SafetyStatus] = field(default_factory=list)       # the shield's
    scene: dict | None = None
    sim_status: list[dict] = field(default_factory=list)             # /sim/vehicle_status
    odometry: list[tuple[int, float]] = field(default_factory=list)  # (stamp ns, forward speed m/s)
    commands: list[Command] = field(default_factory=list)
    proposals: list[tuple[int, int]] = field(default_factory=list)   # (stamp ns, received ns)


class VehicleEpisodeDriver(SimDriver):
    """`forwarded`: the graph has no shield and the VLA's proposals are the commands (graph_variants
    .without_shield), so each command is its own proposal for the latency."""

    def __init__(self, name: str = "msvla_vehicle_driver", forwarded: bool = False):
        super().__init__(name, VehicleObserved())
        self.forwarded = forwarded
        self.create_subscription(String, "/sim/vehicle_status", self._on_sim_status, COMMAND)
        self.create_subscription(Odometry, "/odom", self._on_odometry, SENSOR)
        self.create_subscription(VehicleCommand, VEHICLE_COMMAND_TOPIC, self._on_command, COMMAND)
        self.create_subscription(VehicleCommand, VEHICLE_PROPOSAL_TOPIC, self._on_proposal, COMMAND)

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_sim_status(self, msg: String) -> None:
        self.seen.sim_status.append(json.loads(msg.data))

    def _on_odometry(self, msg: Odometry) -> None:
        self.seen.odometry.append((stamp_to_ns(msg.header.stamp), float(msg.twist.twist.linear.x)))

    def _on_command(self, msg: VehicleCommand) -> None:
        self.seen.commands.append(Command(stamp_to_ns(msg.header.stamp), self.now_ns(), float(msg.steering),
                                          float(msg.throttle), float(msg.brake), msg.model_id))

    def _on_proposal(self, msg: VehicleCommand) -> None:
        self.seen.proposals.append((stamp_to_ns(msg.header.stamp), self.now_ns()))

    def wait_for_graph(self, timeout_s: float = 60.0, alive_check=None, arm_timeout_s: float = 30.0) -> None:
        """Block until the simulator reports, the VLA node listens and something commands the
        vehicle; then give a shield up to `arm_timeout_s` to arm (one that never does, e.g. because
        it requires an ablated sensor, is a result, not a start-up failure)."""
        def ready():
            return (self.reset_pub.get_subscription_count() > 0
                    and self.instruction_pub.get_subscription_count() >= 1
                    and self.count_publishers(VEHICLE_COMMAND_TOPIC) > 0
                    and self.seen.scene is not None and bool(self.seen.sim_status))
        if not self.spin_until(ready, timeout_s, alive_check):
            raise TimeoutError(f"vehicle graph not connected after {timeout_s} s: /sim/reset subscribers "
                               f"{self.reset_pub.get_subscription_count()}, instruction subscribers "
                               f"{self.instruction_pub.get_subscription_count()}, {VEHICLE_COMMAND_TOPIC} publishers "
                               f"{self.count_publishers(VEHICLE_COMMAND_TOPIC)}, scene "
                               f"{'received' if self.seen.scene else 'missing'}, simulator status "
                               f"{'received' if self.seen.sim_status else 'missing'}")
        # a simulator that just exited may linger in discovery for a moment; another graph's stays
        if not self.spin_until(lambda: self.count_publishers("/sim/scene") == 1, 10.0, alive_check):
            simulators = self.count_publishers("/sim/scene")
            raise ClosedLoopError(f"{simulators} simulators publish /sim/scene on ROS domain "
                                  f"{self.context.get_domain_id()}: another graph runs on this machine and would "
                                  f"take resets and commands; give this run its own ROS_DOMAIN_ID")
        if self.count_publishers(SHIELD_STATUS_TOPIC) > 0:
            armed = self.spin_until(lambda: bool(self.seen.statuses)
                                    and self.seen.statuses[-1].state < SafetyStatus.STATE_SAFE_STOP,
                                    arm_timeout_s, alive_check)
            if not armed:
                reasons = "; ".join(self.seen.statuses[-1].reasons) if self.seen.statuses else "no status"
                self.get_logger().warning(f"the shield did not arm within {arm_timeout_s} s ({reasons})")

    def run_episode(self, seed: int, kind: str, instruction: str, timeout_s: float, standstill_s: float,
                    stop_speed_mps: float, alive_check=None, shield_must_reset: bool = True
                    ) -> tuple[str, EpisodeTrace, str]:
        """(how it ended, what was recorded, what the shield had latched before the episode)."""
        self.instruct("")
        seen = self.seen
        marks = {name: len(getattr(seen, name)) for name in ("sim_status", "odometry", "commands", "proposals")}
        scene = self.reset_scene(seed, timeout_s, alive_check)
        # Building the new course stalls the simulator's streams for longer than the shield's odometry
        # timeout, which latches the shield: reset it once the streams are back, not before.
        if not self.spin_until(lambda: sum(t >= scene["stamp_ns"] for t, _ in seen.odometry[-5:]) >= 5,
                               timeout_s, alive_check):
            raise TimeoutError(f"no odometry from the simulator within {timeout_s} s of the reset to seed {seed}")
        shield_reset = self.reset_shield_if_stopped(10.0 if shield_must_reset else 3.0, alive_check,
                                                    must_succeed=shield_must_reset)
        marks["statuses"] = len(seen.statuses)
        episode = scene["episode"]
        instructed_ns = self.now_ns()
        self.instruct(instruction)
        still_since: list[float] = []  # simulated time the car last came to a standstill
        moved: list[bool] = []

        def ended() -> str | None:
            mine = [s for s in seen.sim_status[-3:] if s["episode"] == episode]
            if not mine:
                return None
            last = mine[-1]
            if last["done"]:
                return "collision" if last["collision"] else "route_complete"
            if last["speed_mps"] >= stop_speed_mps:
                still_since.clear()
                moved[:] = [True]
            elif not moved and last["time_s"] < START_GRACE_S:
                return None
            elif not still_since:
                still_since.append(last["time_s"])
            elif last["time_s"] - still_since[0] >= standstill_s:
                return "stopped"
            return None

        end = None
        deadline = time.monotonic() + timeout_s
        while end is None and time.monotonic() < deadline:
            self.spin_until(lambda: False, 0.05, alive_check)
            end = ended()
        self.instruct("")
        statuses = [s for s in seen.sim_status[marks["sim_status"]:] if s["episode"] == episode]
        if not statuses:
            raise TimeoutError(f"no /sim/vehicle_status of episode {episode} (seed {seed}) in {timeout_s} s")
        commands = [c for c in seen.commands[marks["commands"]:] if c.received_ns >= instructed_ns]
        proposals = ([(c.stamp_ns, c.received_ns) for c in commands] if self.forwarded else
                     [p for p in seen.proposals[marks["proposals"]:] if p[1] >= instructed_ns])
        trace = EpisodeTrace(
            kind=kind, scene=scene, statuses=statuses,
            odometry=[(t, v) for t, v in seen.odometry[marks["odometry"]:] if t >= scene["stamp_ns"]],
            commands=commands, proposals=proposals,
            shield_states=[s.state for s in seen.statuses[marks["statuses"]:]])
        # the episode's record is in `trace`; the shield's last state is all the next episode needs
        for name in ("sim_status", "odometry", "commands", "proposals"):
            del getattr(seen, name)[:]
        del seen.statuses[:-1]
        return end or "timeout", trace, shield_reset


def seeded_instruction(seed: int, kinds) -> tuple[str, str]:
    """(kind, phrasing) for a seed: the same task for the same seed in every variant."""
    kinds = list(kinds)
    rng = np.random.default_rng([seed, 7])
    return sample_instruction(rng, kinds[int(rng.integers(len(kinds)))])


class VehicleSession(GraphSession):
    """A vehicle graph variant (`spec`, e.g. from graph_variants) running against the simulator.

    `checkpoint` None runs the checkpoint the graph's parameter files name (the demo); otherwise
    every node that loads a checkpoint loads this one, and commands from any other are refused.
    `shield_stopped_by_design`: the variant's shield requires an ablated sensor, so between episodes
    its refusal to reset is recorded rather than raised."""

    def __init__(self, spec: GraphSpec, base: Path, checkpoint: str | Path | None, log_dir: str | Path,
                 overrides: dict[str, dict] | None = None, *, forwarded: bool = False,
                 shield_stopped_by_design: bool = False, criteria: Criteria = Criteria(),
                 startup_timeout_s: float = 120.0, name: str = "msvla_vehicle_eval"):
        super().__init__(spec, base, checkpoint, log_dir, overrides, tuple(model_nodes(spec, base)),
                         startup_timeout_s, name)
        self.forwarded, self.shield_stopped_by_design, self.criteria = forwarded, shield_stopped_by_design, criteria

    def make_driver(self) -> VehicleEpisodeDriver:
        return VehicleEpisodeDriver(self.name, forwarded=self.forwarded)

    def run_episode(self, seed: int, kinds, timeout_s: float, standstill_s: float) -> DriveRow:
        started = time.monotonic()
        kind, instruction = seeded_instruction(seed, kinds)
        end, trace, shield_reset = self.driver.run_episode(
            seed, kind, instruction, timeout_s, standstill_s, self.criteria.stop_speed_mps, self.runner.check,
            shield_must_reset=not self.shield_stopped_by_design)
        foreign = {c.model_id for c in trace.commands if c.model_id} - {self.model_id}
        if self.model_id and foreign:
            raise ClosedLoopError(f"commands came from checkpoint(s) {sorted(foreign)}, not {self.model_id} "
                                  f"({self.checkpoint}): a node did not load the checkpoint under test")
        return DriveRow(seed=seed, kind=kind, instruction=instruction, end=end,
                        seconds=time.monotonic() - started, metrics=episode_metrics(trace, self.criteria),
                        shield_reset=shield_reset)
