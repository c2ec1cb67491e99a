"""Graph test: the simulator and the Franka graph as separate processes over DDS.

The graph is started once for the module (each process imports torch: seconds and ~240 MB).
"""
import math

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray

from msvla_bringup.episodes import EpisodeDriver
from msvla_bringup.graph import load_graph
from msvla_bringup.interfaces import settled_interface_problems
from msvla_bringup.runner import GraphRunner
from msvla_core.config import load_yaml
from msvla_msgs.msg import GraspPose, SafetyStatus

pytestmark = pytest.mark.graph


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    spec, base = load_graph("franka_rgbd")
    runner = GraphRunner(spec, base, tmp_path_factory.mktemp("graph_logs"), simulation=True)
    rclpy.init()
    driver = EpisodeDriver("graph_test_driver")
    runner.start()
    try:
        driver.wait_for_graph(timeout_s=90.0, alive_check=runner.check)
        yield runner, driver, base
    finally:
        runner.stop()
        driver.destroy_node()
        rclpy.try_shutdown()


def workspace(base):
    params = load_yaml(base / "safety" / "franka_grasp.yaml")["safety_shield"]["ros__parameters"]
    return params["workspace_min"], params["workspace_max"]


def test_instruction_yields_a_shielded_grasp_inside_the_workspace(graph):
    runner, driver, base = graph
    result = driver.run_episode(seed=4242, timeout_s=60.0, alive_check=runner.check)
    grasps = [g for g, _ in driver.seen.grasps if g.instruction == result.instruction]
    assert grasps, f"no shielded grasp for {result.instruction!r}"
    lo, hi = workspace(base)
    for g in grasps:
        p = g.pose.position
        assert all(lo[i] <= v <= hi[i] for i, v in enumerate((p.x, p.y, p.z))), p
        assert g.header.frame_id == "panda_link0" and 0.0 <= g.width <= 0.08
    assert result.outcome is not None, "the simulator executed no grasp"
    assert result.first_grasp_latency_ms is not None and result.first_grasp_latency_ms < 1000.0


def test_injected_unsafe_proposals_never_reach_the_shield_output(graph):
    runner, driver, _ = graph
    driver.instruct("")  # the model goes idle; only injected proposals reach the shield
    driver.spin_until(lambda: False, 0.5, runner.check)
    n_status = len(driver.seen.statuses)

    def proposal(x, y, z):
        msg = GraspPose(width=0.04, score=0.99, instruction="injected unsafe proposal")
        msg.header.stamp = driver.get_clock().now().to_msg()
        msg.header.frame_id = "panda_link0"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
        msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
        return msg

    unsafe = [proposal(1.4, 0.0, 0.1), proposal(0.5, -0.9, 0.1), proposal(0.5, 0.0, -0.3),
              proposal(math.nan, 0.0, 0.1), proposal(0.5, math.inf, 0.1)]
    for msg in unsafe:
        driver.proposal_pub.publish(msg)
    assert driver.spin_until(lambda: len(driver.seen.statuses) >= n_status + len(unsafe), 10.0, runner.check)
    driver.spin_until(lambda: False, 1.0, runner.check)  # anything that leaked would arrive by now
    assert not [g for g, _ in driver.seen.grasps if g.instruction == "injected unsafe proposal"]
    statuses = driver.seen.statuses[n_status:]
    codes = [c for s in statuses for c in s.interventions]
    assert codes.count("outside_workspace") >= 3 and "table_clearance" in codes and "non_finite" in codes, codes
    # a non-finite proposal means the model is broken: the safe stop latches until a reset
    assert statuses[-1].state == SafetyStatus.STATE_SAFE_STOP and "non_finite" in statuses[-1].interventions
    assert driver.reset_shield_if_stopped(10.0, runner.check)
    assert driver.spin_until(lambda: driver.seen.statuses[-1].state == SafetyStatus.STATE_OK, 5.0, runner.check)
    runner.check()  # every node is still running


def test_every_node_reports_input_rates_and_latencies_on_diagnostics(graph):
    runner, driver, _ = graph
    latest = {}
    sub = driver.create_subscription(DiagnosticArray, "/diagnostics",
                                     lambda msg: latest.update((st.name, st) for st in msg.status), 10)
    names = {n.name for n in runner.nodes}
    assert driver.spin_until(lambda: names <= set(latest), 10.0, runner.check), sorted(names - set(latest))
    driver.destroy_subscription(sub)
    values = {name: {kv.key: kv.value for kv in latest[name].values} for name in names}
    for name, expect in (("rgb_encoder", "rate.rgb_hz"), ("depth_encoder", "rate.depth_hz"),
                         ("fusion_node", "rate.depth_hz"), ("vla_node", "rate.fused_hz"),
                         ("safety_shield", "rate.fused_hz")):
        assert float(values[name][expect]) > 0.0, (name, values[name])
    for name in ("rgb_encoder", "depth_encoder", "fusion_node", "vla_node", "safety_shield"):
        assert float(values[name]["age_ms_median"]) > 0.0 and "hop_ms_p99" in values[name], (name, values[name])


def test_running_nodes_expose_exactly_their_documented_interfaces(graph):
    runner, driver, _ = graph
    assert settled_interface_problems(driver, runner.nodes, 10.0, runner.check) == []


def test_graph_shuts_down_cleanly_on_sigint(graph):
    runner, _, _ = graph
    codes = runner.stop()
    assert codes and all(code == 0 for code in codes.values()), codes
