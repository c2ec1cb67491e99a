"""Graph test: the vehicle simulator and the vehicle graph (camera, LiDAR, radar, IMU and proprio
encoders -> fusion -> VLA -> vehicle safety shield) over DDS, as the graph file composes them: the
model nodes in one node_container process, the simulator and the shield in processes of their own.

The graph is started once for the module (each process imports torch: seconds and ~240 MB); the
tests run in file order and the last one shuts the graph down. How well the car drives is the closed
-loop evaluation's business (make eval-vehicle); here: that the model's proposals flow, that the
shield turns them into bounded commands at its control rate, that the simulator executes those
commands, and that malformed sensor messages are dropped by reason without stopping any of that.
"""
import json
import math
import time

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from msvla_bringup.graph import load_graph
from msvla_bringup.interfaces import settled_interface_problems
from msvla_bringup.runner import GraphRunner
from msvla_core.config import load_yaml
from msvla_msgs.msg import FusedObservation, SafetyStatus, VehicleCommand
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND, FEATURE, LATCHED, SENSOR

pytestmark = pytest.mark.graph

INSTRUCTION = "follow the lane"
MODALITIES = {"camera", "lidar", "radar", "imu", "proprio"}  # the encoder keys of the vehicle checkpoint
# the model nodes, whose diagnostics report the median time of their step (hop_ms_median)
MODEL_NODES = ("rgb_encoder", "lidar_encoder", "radar_encoder", "imu_encoder", "proprio_encoder",
               "fusion_node", "vla_node")
STATES = {SafetyStatus.STATE_OK: "OK", SafetyStatus.STATE_INTERVENING: "INTERVENING",
          SafetyStatus.STATE_SAFE_STOP: "SAFE_STOP", SafetyStatus.STATE_EMERGENCY: "EMERGENCY"}


class VehicleProbe(Node):
    """Gives the instruction and records what the graph sends, each with its receive time (ns, ROS clock)."""

    def __init__(self):
        super().__init__("vehicle_graph_probe")
        self.proposals: list[tuple[VehicleCommand, int]] = []
        self.commands: list[tuple[VehicleCommand, int]] = []
        self.statuses: list[SafetyStatus] = []
        self.sim_status: list[dict] = []
        self.fused: list[FusedObservation] = []
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.instruction_pub = self.create_publisher(String, "/msvla/instruction", LATCHED)
        self.create_subscription(VehicleCommand, "/msvla/proposal/vehicle",
                                 lambda m: self.proposals.append((m, self.now_ns())), COMMAND)
        self.create_subscription(VehicleCommand, "/msvla/vehicle/command",
                                 lambda m: self.commands.append((m, self.now_ns())), COMMAND)
        self.create_subscription(SafetyStatus, "/msvla/safety/status", self.statuses.append, COMMAND)
        self.create_subscription(String, "/sim/vehicle_status",
                                 lambda m: self.sim_status.append(json.loads(m.data)), COMMAND)
        self.create_subscription(FusedObservation, "/msvla/fused", self.fused.append, FEATURE)
        self.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, COMMAND)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            self.diagnostics[status.name] = {v.key: v.value for v in status.values}

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def spin_until(self, predicate, timeout_s: float, alive_check) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            rclpy.spin_once(self, timeout_sec=0.05)
            alive_check()
            if predicate():
                return True
        return False

    def state(self):
        return self.statuses[-1].state if self.statuses else None

    def describe_status(self) -> str:
        if not self.statuses:
            return "no SafetyStatus received"
        s = self.statuses[-1]
        return f"state {STATES.get(s.state, s.state)}: " + "; ".join(
            f"[{c}] {r}" for c, r in zip(s.interventions, s.reasons))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    spec, base = load_graph("vehicle_multisensor")
    log_dir = tmp_path_factory.mktemp("vehicle_graph_logs")
    runner = GraphRunner(spec, base, log_dir, simulation=True)
    rclpy.init()
    probe = VehicleProbe()
    runner.start()
    try:
        def connected():
            return (probe.instruction_pub.get_subscription_count() >= 1  # the VLA node
                    and probe.count_publishers("/msvla/vehicle/command") > 0
                    and probe.count_publishers("/msvla/proposal/vehicle") > 0
                    and probe.statuses and probe.sim_status)
        assert probe.spin_until(connected, 90.0, runner.check), \
            f"vehicle graph not connected after 90 s (logs in {log_dir}); shield: {probe.describe_status()}"
        probe.instruction_pub.publish(String(data=INSTRUCTION))  # latched: the VLA node keeps it
        yield runner, probe, base
    finally:
        runner.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def max_steering(base) -> float:
    return load_yaml(base / "safety" / "vehicle.yaml")["safety_shield"]["ros__parameters"]["max_steering"][0]


def test_the_shield_arms_with_every_input_alive(graph):
    runner, probe, _ = graph
    ok = (SafetyStatus.STATE_OK, SafetyStatus.STATE_INTERVENING)
    reached = probe.spin_until(lambda: probe.state() in ok, 60.0, runner.check)
    if not reached:
        print(f"shield never reached OK/INTERVENING; last status {probe.describe_status()}")
    assert reached, f"the shield never armed: {probe.describe_status()}"
    waiting = [s for s in probe.statuses if "waiting_for_inputs" in s.interventions]
    assert probe.statuses[-1].state in ok and "waiting_for_inputs" not in probe.statuses[-1].interventions, \
        probe.describe_status()
    print(f"shield armed after {len(waiting)} waiting_for_inputs statuses: {probe.describe_status()}")


def test_the_instruction_yields_vla_proposals(graph, capsys):
    runner, probe, _ = graph
    n_before, n_fused = len(probe.proposals), len(probe.fused)
    assert probe.spin_until(lambda: len(probe.proposals) >= n_before + 30, 30.0, runner.check), \
        f"{len(probe.proposals) - n_before} VLA proposals on /msvla/proposal/vehicle in 30 s after {INSTRUCTION!r}"
    fresh = probe.proposals[n_before:]
    for msg, _ in fresh:
        assert msg.header.frame_id == "base_link", msg.header.frame_id
        assert msg.model_id, "proposal without the checkpoint's model id"
        assert all(math.isfinite(v) for v in (msg.steering, msg.throttle, msg.brake)), msg
    stamps = [stamp_to_ns(m.header.stamp) for m, _ in fresh]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "proposal stamps are not increasing"
    # The VLA stamps each proposal with the oldest sensor stamp of its fused set: receive time minus
    # that stamp is oldest sensor sample -> encoders -> fusion -> VLA -> this probe.
    latency_ms = np.array([(recv - stamp_to_ns(m.header.stamp)) * 1e-6 for m, recv in fresh])
    rate_hz = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9)
    fused = probe.fused[n_fused:]
    complete = sum(1 for f in fused if set(f.modalities) == MODALITIES)
    timings = {node: probe.diagnostics.get(node, {}).get("hop_ms_median", "?") for node in MODEL_NODES}
    with capsys.disabled():
        print(f"\n[vehicle graph] {len(fresh)} proposals at {rate_hz:.1f} Hz; end-to-end latency "
              f"(oldest sensor stamp -> proposal received): median {np.median(latency_ms):.1f} ms, "
              f"p99 {np.percentile(latency_ms, 99):.1f} ms, max {latency_ms.max():.1f} ms; "
              f"{complete}/{len(fused)} fused sets with all of {sorted(MODALITIES)}; "
              f"per-step ms (node medians): {timings}")
    # every encoder's feature reaches fusion under the name the checkpoint and the shield use
    assert complete > 0, (f"no fused set with all of {sorted(MODALITIES)}: {[list(f.modalities) for f in fused]}; "
                          f"diagnostics: {[(n, probe.diagnostics.get(n)) for n in MODEL_NODES]}")
    assert np.median(latency_ms) < 1000.0, f"median end-to-end latency {np.median(latency_ms):.0f} ms"


def test_shielded_commands_are_frequent_and_bounded(graph, capsys):
    runner, probe, base = graph
    limit = max_steering(base)
    n_before = len(probe.commands)
    probe.spin_until(lambda: False, 3.0, runner.check)
    window = probe.commands[n_before:]
    assert len(window) >= 2, f"{len(window)} commands on /msvla/vehicle/command in 3 s"
    stamps = [stamp_to_ns(m.header.stamp) for m, _ in window]
    rate_hz = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9)
    received_hz = (len(window) - 1) / ((window[-1][1] - window[0][1]) * 1e-9)
    driven = sum(1 for m, _ in window if m.model_id)
    with capsys.disabled():
        print(f"\n[vehicle graph] {len(window)} shielded commands in 3 s: {rate_hz:.1f} Hz by stamp, "
              f"{received_hz:.1f} Hz received; {driven} driven by the model, {len(window) - driven} by "
              f"the shield's braking profile; shield {probe.describe_status()}")
    assert rate_hz >= 10.0 and received_hz >= 10.0, (rate_hz, received_hz)
    for msg, _ in probe.commands:  # every command since start, not just the window
        assert msg.header.frame_id == "base_link", msg.header.frame_id
        assert all(math.isfinite(v) for v in (msg.steering, msg.throttle, msg.brake)), msg
        assert not (msg.throttle > 0.0 and msg.brake > 0.0), f"throttle and brake together: {msg}"
        assert abs(msg.steering) <= limit + 1e-6, f"|steering| {abs(msg.steering)} > {limit}"
        assert 0.0 <= msg.throttle <= 1.0 and 0.0 <= msg.brake <= 1.0, msg


def test_the_simulator_applies_the_shield_commands(graph):
    runner, probe, _ = graph
    n_before = len(probe.sim_status)
    assert probe.spin_until(lambda: len(probe.sim_status) >= n_before + 5, 10.0, runner.check), \
        "no /sim/vehicle_status"
    sources = [s["command"]["source"] for s in probe.sim_status[n_before:]]
    assert sources[-1] == "command" and sources.count("command") >= len(sources) - 1, \
        f"the simulator is not executing /msvla/vehicle/command: sources {sources}"


def test_no_node_reports_a_peer_it_cannot_communicate_with(graph):
    """Every node compares its endpoints' QoS and type with its peers' every QOS_CHECK_PERIOD_S
    (msvla_ros.qos_events); in a healthy graph none may name a problem (qos_problems)."""
    runner, probe, _ = graph
    nodes = set(MODEL_NODES) | {"vehicle_sim", "safety_shield"}
    probe.diagnostics.clear()
    assert probe.spin_until(lambda: nodes <= set(probe.diagnostics), 5.0, runner.check), \
        f"no diagnostics from {sorted(nodes - set(probe.diagnostics))}"
    problems = {n: probe.diagnostics[n]["qos_problems"] for n in nodes if "qos_problems" in probe.diagnostics[n]}
    assert not problems, problems


def malformed_joint_states(stamp) -> dict[str, JointState]:
    """drop reason -> a JointState the proprio encoder must drop for it."""
    names = ["front_steering_joint", "rear_wheel_joint"]
    cases = {"missing_joint": JointState(name=names[:1], position=[0.0], velocity=[0.0]),
             "malformed_joint_state": JointState(name=names, position=[0.0], velocity=[0.0, 0.0]),
             "missing_velocity": JointState(name=names, position=[0.0, 0.0]),
             "bad_input": JointState(name=names, position=[math.nan, 0.0], velocity=[0.0, math.inf])}
    for msg in cases.values():
        msg.header.stamp, msg.header.frame_id = stamp, "base_link"
    return cases


def test_malformed_joint_states_are_dropped_by_reason_while_the_car_stays_shielded(graph):
    runner, probe, base = graph
    pub = probe.create_publisher(JointState, "/joint_states", SENSOR)
    assert probe.spin_until(lambda: pub.get_subscription_count() >= 1, 10.0, runner.check), \
        "the proprio encoder does not subscribe to /joint_states"

    def drops():
        values = probe.diagnostics.get("proprio_encoder", {})
        return {k.removeprefix("dropped."): int(v) for k, v in values.items() if k.startswith("dropped.")}

    before = drops()
    n_fused, n_commands = len(probe.fused), len(probe.commands)
    for _ in range(5):
        for msg in malformed_joint_states(probe.get_clock().now().to_msg()).values():
            pub.publish(msg)
        probe.spin_until(lambda: False, 0.1, runner.check)
    reasons = set(malformed_joint_states(None).keys())
    assert probe.spin_until(lambda: all(drops().get(r, 0) > before.get(r, 0) for r in reasons), 15.0,
                            runner.check), f"proprio_encoder drop counters {drops()}, before {before}"
    # the encoder stays up and keeps encoding the simulator's well-formed messages
    assert probe.spin_until(lambda: sum("proprio" in f.modalities for f in probe.fused[n_fused:]) >= 10, 10.0,
                            runner.check), [list(f.modalities) for f in probe.fused[n_fused:]]
    limit = max_steering(base)
    fresh = probe.commands[n_commands:]
    assert len(fresh) >= 10, f"{len(fresh)} shielded commands while malformed JointStates arrived"
    for msg, _ in fresh:
        assert all(math.isfinite(v) for v in (msg.steering, msg.throttle, msg.brake)), msg
        assert abs(msg.steering) <= limit + 1e-6 and not (msg.throttle > 0.0 and msg.brake > 0.0), msg
    probe.destroy_publisher(pub)


def test_running_nodes_expose_exactly_their_documented_interfaces(graph):
    runner, probe, _ = graph
    assert settled_interface_problems(probe, runner.nodes, 10.0, runner.check) == []


def test_graph_shuts_down_cleanly_on_sigint(graph):
    runner, _, _ = graph
    codes = runner.stop()
    assert len(codes) == len(runner.groups) and all(code == 0 for code in codes.values()), codes
