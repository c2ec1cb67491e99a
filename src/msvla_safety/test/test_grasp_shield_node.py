"""In-process node test of the grasp shield over real rclpy topics and services: it passes safe
grasps only while armed, rejects unsafe ones with reasons naming the field, latches faults and the
emergency stop, and resets only while its inputs are healthy."""
import math
import time

import pytest
from rclpy.duration import Duration
from rclpy.parameter import Parameter
from shield_inputs import ShieldInputs
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from msvla_msgs.msg import GraspPose, Heartbeat, SafetyStatus
from msvla_ros.qos import COMMAND
from msvla_ros.testing import Spinner, wait_for_subscribers

SAFE = dict(x=0.5, y=0.0, z=0.05, width=0.05)


class Inputs(ShieldInputs):
    """The shield's inputs plus grasp proposals; collects the shielded grasps."""

    def __init__(self):
        super().__init__(["rgb", "depth"])
        self.proposal_pub = self.create_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
        self.out = []
        self.create_subscription(GraspPose, "/msvla/grasp", self.out.append, COMMAND)

    def grasp(self, stamp=None, x=0.5, y=0.0, z=0.05, width=0.05, frame="panda_link0", orientation=(1.0, 0.0, 0.0, 0.0)):
        msg = GraspPose(width=width, score=0.9, instruction="pick up the red cube", model_id="m1")
        msg.header.stamp = stamp or self.get_clock().now().to_msg()
        msg.header.frame_id = frame
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = orientation
        self.proposal_pub.publish(msg)
        return msg


@pytest.fixture(scope="module")
def graph(ros):
    from msvla_safety.grasp_shield_node import GraspShieldNode

    shield = GraspShieldNode(use_global_arguments=False, parameter_overrides=[
        Parameter("max_age", value=5.0),  # a loaded test machine may pass messages on slowly
        Parameter("sensor_timeout", value=0.5), Parameter("vla_timeout", value=0.5),
        Parameter("expected_model_id", value="m1"), Parameter("max_update_rate", value=1000.0),
        Parameter("actuation_enabled", value=True)])
    assert shield.autostart() == ""
    inputs = Inputs()
    spinner = Spinner([shield, inputs])
    wait_for_subscribers(inputs.proposal_pub)
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_OK), "shield never armed"
    yield shield, inputs
    spinner.shutdown()
    shield.destroy_node()
    inputs.destroy_node()


def recover(inputs):
    inputs.recover()
    inputs.out.clear()


def test_unsafe_grasps_are_rejected_with_reasons_and_safe_ones_pass(graph):
    shield, inputs = graph
    inputs.out.clear()
    now = inputs.get_clock().now()
    unsafe = {
        "outside_workspace": dict(x=1.5),
        "stale": dict(stamp=(now - Duration(seconds=30.0)).to_msg()),
        "future_stamp": dict(stamp=(now + Duration(seconds=30.0)).to_msg()),
        "wrong_frame": dict(frame="camera"),
        "width_out_of_range": dict(width=0.5),
        "table_clearance": dict(z=-0.01),
        "approach_cone": dict(orientation=(0.0, 0.0, 0.0, 1.0)),  # gripper pointing up
    }
    rejected_before = shield.shield.rejected
    for kw in unsafe.values():
        inputs.grasp(**kw)
    assert Spinner.wait_for(lambda: shield.shield.rejected - rejected_before == len(unsafe))
    assert inputs.out == []
    time.sleep(0.2)  # the status of the last decision
    codes = {code for s in inputs.status for code in s.interventions}
    assert set(unsafe) <= codes, codes
    reasons = " ".join(r for s in inputs.status for r in s.reasons)
    assert "position.x=1.500" in reasons and "width=0.5000" in reasons
    assert inputs.state() in (SafetyStatus.STATE_INTERVENING, SafetyStatus.STATE_OK)

    safe = inputs.grasp(**SAFE)
    assert Spinner.wait_for(lambda: len(inputs.out) == 1)
    assert inputs.out[0].pose.position.x == 0.5 and inputs.out[0].header.stamp == safe.header.stamp
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_OK)


def test_a_non_finite_grasp_latches_the_safe_stop_until_reset(graph):
    shield, inputs = graph
    inputs.out.clear()
    inputs.grasp(y=math.nan)
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_SAFE_STOP)
    assert "position.y=nan" in " ".join(inputs.status[-1].reasons)
    inputs.grasp(**SAFE)
    time.sleep(0.5)
    assert inputs.out == [], "a safe grasp passed while the safe stop was latched"
    assert "non_finite" in inputs.status[-1].count_codes
    recover(inputs)
    inputs.grasp(**SAFE)
    assert Spinner.wait_for(lambda: len(inputs.out) == 1)


def test_a_silent_vla_stops_everything_and_reset_waits_for_it(graph):
    shield, inputs = graph
    inputs.out.clear()
    inputs.alive = False
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_SAFE_STOP, 5.0)
    assert "heartbeat_timeout" in inputs.status[-1].interventions
    assert any("vla" in r for r in inputs.status[-1].reasons)
    refused = inputs.call(inputs.reset_client)
    assert not refused.success and "vla" in refused.message
    inputs.grasp(**SAFE)
    time.sleep(0.3)
    assert inputs.out == []
    recover(inputs)


def test_an_error_heartbeat_is_an_input_fault(graph):
    shield, inputs = graph
    inputs.out.clear()
    inputs.level = Heartbeat.LEVEL_ERROR
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_SAFE_STOP, 5.0)
    assert "non-finite" in " ".join(inputs.status[-1].reasons)
    recover(inputs)


def test_emergency_stop_by_topic_and_service_latches_until_reset(graph):
    shield, inputs = graph
    inputs.out.clear()
    inputs.estop_pub.publish(Bool(data=True))
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_EMERGENCY)
    inputs.grasp(**SAFE)
    time.sleep(0.3)
    assert inputs.out == []
    inputs.estop_pub.publish(Bool(data=False))  # releasing the button does not clear the latch
    recover(inputs)
    assert inputs.call(inputs.estop_client).success
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_EMERGENCY)
    recover(inputs)


def test_a_dry_run_checks_and_reports_but_publishes_nothing_until_enabled(graph):
    shield, inputs = graph
    enable = inputs.create_client(SetBool, "/msvla/safety/enable_actuation")
    answer = inputs.call(enable, SetBool.Request(data=False))
    assert answer.success and "dry run" in answer.message
    inputs.out.clear()
    passed, rejected, withheld = shield.shield.passed, shield.shield.rejected, shield.withheld
    inputs.grasp(**SAFE)
    inputs.grasp(x=1.5)  # still checked and rejected in a dry run
    assert Spinner.wait_for(lambda: shield.withheld == withheld + 1 and shield.shield.passed == passed + 1
                            and shield.shield.rejected == rejected + 1)
    time.sleep(0.3)
    assert inputs.out == []
    level, message, values = shield._report()
    assert "dry run" in message and values["actuation_enabled"] is False and values["withheld_dry_run"] >= 1
    assert inputs.call(enable, SetBool.Request(data=True)).success
    inputs.grasp(**SAFE)
    assert Spinner.wait_for(lambda: len(inputs.out) == 1)
    inputs.destroy_client(enable)


def test_a_deactivated_shield_passes_nothing_and_resumes_when_activated(graph):
    from rclpy.lifecycle import TransitionCallbackReturn

    shield, inputs = graph
    inputs.out.clear()
    assert shield.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    n_status = len(inputs.status)
    inputs.grasp(**SAFE)
    time.sleep(0.5)
    assert inputs.out == [] and len(inputs.status) == n_status
    assert shield._report()[1].startswith("inactive")
    assert shield.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert Spinner.wait_for(lambda: len(inputs.status) > n_status)
    inputs.grasp(**SAFE)
    assert Spinner.wait_for(lambda: len(inputs.out) == 1)


def test_a_wrong_limit_refuses_configure_with_its_name(ros):
    from rclpy.lifecycle import TransitionCallbackReturn

    from msvla_safety.grasp_shield_node import GraspShieldNode

    node = GraspShieldNode(use_global_arguments=False, parameter_overrides=[
        Parameter("min_width", value=0.07), Parameter("max_width", value=0.05),
        Parameter("autostart", value=False)])
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "min_width" in node.configure_error, node.configure_error
    node.destroy_node()
