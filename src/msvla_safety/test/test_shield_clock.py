"""The shield under simulated time (/clock): a ROS clock that jumps ahead or back is a fault that
latches the safe state, noticed by the steady-clock watchdog."""
import pytest
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from shield_inputs import ShieldInputs

from msvla_msgs.msg import SafetyStatus
from msvla_ros.messages import ns_to_stamp
from msvla_ros.testing import Spinner


class SimClock(ShieldInputs):
    """The shield's inputs plus a /clock that runs at real time, starting at 1000 s."""

    def __init__(self):
        super().__init__(["rgb", "depth"])
        self.sim_ns = 1_000 * 10**9
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.create_timer(0.02, self.tick_clock)

    def tick_clock(self):
        self.sim_ns += 20_000_000
        self.clock_pub.publish(Clock(clock=ns_to_stamp(self.sim_ns)))


@pytest.fixture(scope="module")
def graph(ros):
    from msvla_safety.grasp_shield_node import GraspShieldNode

    shield = GraspShieldNode(use_global_arguments=False, parameter_overrides=[
        Parameter("use_sim_time", value=True), Parameter("max_clock_jump", value=0.5),
        Parameter("sensor_timeout", value=1.0), Parameter("vla_timeout", value=1.0),
        Parameter("actuation_enabled", value=True)])
    assert shield.autostart() == ""
    inputs = SimClock()
    spinner = Spinner([shield, inputs])
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_OK), "shield never armed"
    yield shield, inputs
    spinner.shutdown()
    shield.destroy_node()
    inputs.destroy_node()


@pytest.mark.parametrize("jump_s", [10.0, -5.0])
def test_a_clock_jump_latches_the_safe_stop_until_reset(graph, jump_s):
    shield, inputs = graph
    assert shield.get_clock().now().nanoseconds >= 1_000 * 10**9  # the shield does run on /clock
    inputs.sim_ns += int(jump_s * 1e9)
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_SAFE_STOP, 5.0)
    assert "clock_jump" in inputs.status[-1].interventions, inputs.status[-1].reasons
    Spinner.wait_for(lambda: False, 0.5)  # the clock keeps running normally: the latch stays
    assert inputs.state() == SafetyStatus.STATE_SAFE_STOP
    inputs.recover()
