"""Fault injection with real processes: the Franka graph runs a checkpoint whose grasp head emits NaN.
The VLA node proposes nothing and reports ERROR heartbeats; the shield moves to its safe state
naming the VLA's fault, nothing reaches the robot, and a reset is accepted only once the model is
idle and its heartbeat healthy again."""
import pytest
import rclpy
import torch

from msvla_bringup.closed_loop import graph_overrides
from msvla_bringup.episodes import EpisodeDriver
from msvla_bringup.graph import load_graph
from msvla_bringup.runner import GraphRunner
from msvla_core.models import GraspModelConfig, GraspVLA
from msvla_core.models.checkpoint import save_pretrained
from msvla_msgs.msg import SafetyStatus

pytestmark = pytest.mark.graph


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    torch.manual_seed(3)
    model = GraspVLA(GraspModelConfig())
    with torch.no_grad():
        for p in model.head.parameters():
            p.fill_(float("nan"))
    checkpoint = tmp_path_factory.mktemp("nan_checkpoint")
    save_pretrained(model, checkpoint)
    spec, base = load_graph("franka_rgbd")
    runner = GraphRunner(spec, base, tmp_path_factory.mktemp("nan_logs"), simulation=True,
                         overrides=graph_overrides(spec, checkpoint))
    rclpy.init()
    driver = EpisodeDriver("nan_model_driver")
    runner.start()
    try:
        driver.wait_for_graph(timeout_s=90.0, alive_check=runner.check)
        yield runner, driver
    finally:
        runner.stop()
        driver.destroy_node()
        rclpy.try_shutdown()


def test_a_model_emitting_nan_ends_in_the_safe_state_until_it_is_healthy_and_reset(graph):
    runner, driver = graph
    ok = lambda: driver.seen.statuses and driver.seen.statuses[-1].state == SafetyStatus.STATE_OK  # noqa: E731
    assert driver.spin_until(ok, 60.0, runner.check), "the shield never armed with an idle model"
    driver.instruct("pick up the red cube")
    stopped = lambda: (driver.seen.statuses[-1].state == SafetyStatus.STATE_SAFE_STOP  # noqa: E731
                       and "input_fault" in driver.seen.statuses[-1].interventions)
    assert driver.spin_until(stopped, 10.0, runner.check), \
        f"no safe stop for the NaN model: {list(zip(driver.seen.statuses[-1].interventions, driver.seen.statuses[-1].reasons))}"
    assert any("non-finite" in r for r in driver.seen.statuses[-1].reasons), driver.seen.statuses[-1].reasons
    driver.spin_until(lambda: False, 1.0, runner.check)
    assert driver.seen.grasps == [] and driver.seen.outcomes == [], "something reached the robot"
    response = driver.call(driver.reset_client, 10.0, runner.check)
    assert not response.success and "vla" in response.message, response.message

    driver.instruct("")  # the model goes idle: after fault_hold its heartbeat is OK again
    assert driver.reset_shield_if_stopped(15.0, runner.check)
    assert driver.spin_until(ok, 5.0, runner.check)
    runner.check()
