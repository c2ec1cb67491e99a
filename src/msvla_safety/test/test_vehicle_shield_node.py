"""In-process node test of the vehicle shield over real rclpy topics: one command per control tick,
inside the speed-scheduled limits; braking without a fresh proposal, with an obstacle ahead, with a
silent input, and on the emergency stop."""
import math
import time

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2, PointField
from shield_inputs import ShieldInputs
from std_msgs.msg import Bool

from msvla_core.data.pointcloud import array_to_pointcloud_fields
from msvla_msgs.msg import SafetyStatus, VehicleCommand
from msvla_ros.qos import COMMAND, SENSOR
from msvla_ros.testing import Spinner, wait_for_subscribers

CONTROL_RATE = 50.0


def cloud(columns: dict, frame: str) -> PointCloud2:
    fields = array_to_pointcloud_fields({k: np.asarray(v, dtype=np.float32) for k, v in columns.items()})
    fields["fields"] = [PointField(**f) for f in fields["fields"]]
    msg = PointCloud2(**fields)
    msg.header.frame_id = frame
    return msg


class Inputs(ShieldInputs):
    """Every input of the vehicle shield: heartbeats, odometry, LiDAR, radar and proposals at 20 Hz."""

    def __init__(self):
        super().__init__(["camera", "lidar"])
        self.speed = 5.0
        self.proposal = (0.0, 0.3, 0.0)   # steering, throttle, brake; None: no proposals
        self.lidar_xyz = np.zeros((0, 3))
        self.radar_alive = True
        self.proposal_pub = self.create_publisher(VehicleCommand, "/msvla/proposal/vehicle", COMMAND)
        self.odom_pub = self.create_publisher(Odometry, "/odom", SENSOR)
        self.lidar_pub = self.create_publisher(PointCloud2, "/lidar/points", SENSOR)
        self.radar_pub = self.create_publisher(PointCloud2, "/radar/targets", SENSOR)
        self.commands = []
        self.create_subscription(VehicleCommand, "/msvla/vehicle/command",
                                 lambda m: self.commands.append((time.monotonic(), m)), COMMAND)

    def beat(self):
        super().beat()
        if not self.alive:
            return
        stamp = self.get_clock().now().to_msg()
        odom = Odometry()
        odom.header.stamp = stamp
        odom.twist.twist.linear.x = self.speed
        self.odom_pub.publish(odom)
        xyz = self.lidar_xyz
        lidar = cloud({"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}, "lidar")
        lidar.header.stamp = stamp
        self.lidar_pub.publish(lidar)
        if self.radar_alive:
            radar = cloud({"range": [], "azimuth": [], "radial_velocity": [], "rcs": []}, "radar")
            radar.header.stamp = stamp
            self.radar_pub.publish(radar)
        if self.proposal is not None:
            steering, throttle, brake = self.proposal
            cmd = VehicleCommand(steering=steering, throttle=throttle, brake=brake, model_id="m1")
            cmd.header.stamp = stamp
            cmd.header.frame_id = "base_link"
            self.proposal_pub.publish(cmd)

    def since(self, t0):
        return [m for t, m in self.commands if t >= t0]


@pytest.fixture(scope="module")
def graph(ros):
    from msvla_safety.vehicle_shield_node import VehicleShieldNode

    shield = VehicleShieldNode(use_global_arguments=False, parameter_overrides=[
        Parameter("max_age", value=2.0),  # a loaded test machine may pass messages on slowly
        Parameter("sensor_timeout", value=0.5), Parameter("vla_timeout", value=0.5),
        Parameter("odometry_timeout", value=0.5), Parameter("obstacle_timeout", value=0.5),
        Parameter("control_rate", value=CONTROL_RATE), Parameter("expected_model_id", value="m1"),
        Parameter("actuation_enabled", value=True)])
    assert shield.autostart() == ""
    inputs = Inputs()
    spinner = Spinner([shield, inputs])
    wait_for_subscribers(inputs.proposal_pub)
    assert Spinner.wait_for(lambda: inputs.state() in (SafetyStatus.STATE_OK, SafetyStatus.STATE_INTERVENING)), \
        f"shield never armed: {inputs.status[-1].reasons if inputs.status else 'no status'}"
    yield shield, inputs
    spinner.shutdown()
    shield.destroy_node()
    inputs.destroy_node()


def test_commands_follow_the_model_within_the_steering_schedule(graph):
    shield, inputs = graph
    inputs.proposal = (1.0, 0.3, 0.0)  # far beyond the 0.45 rad allowed at 5 m/s
    time.sleep(2.0)
    t0 = time.monotonic()
    time.sleep(1.0)
    cmds = inputs.since(t0)
    assert len(cmds) >= 0.5 * CONTROL_RATE, f"{len(cmds)} commands in 1 s at control_rate {CONTROL_RATE} Hz"
    limit = shield.shield.limits.schedule(5.0).max_steering_rad
    assert all(abs(c.steering) <= limit + 1e-6 for c in cmds)
    assert cmds[-1].steering == pytest.approx(limit, abs=1e-4)  # saturated at the schedule's limit
    assert all(c.throttle > 0.0 and c.brake == 0.0 and c.model_id == "m1" for c in cmds[-5:])
    assert "steering_limited" in inputs.status[-1].interventions
    steering = [c.steering for c in inputs.since(0)]
    rate = shield.shield.limits.schedule(0.0).max_steering_rate_radps
    # each step is within the rate limit for at most two control periods of elapsed time
    assert max(abs(b - a) for a, b in zip(steering, steering[1:])) <= rate * 2.0 / CONTROL_RATE + 1e-6


def test_no_fresh_proposal_brakes(graph):
    shield, inputs = graph
    inputs.proposal = None
    assert Spinner.wait_for(lambda: "no_fresh_proposal" in inputs.status[-1].interventions, 5.0)
    t0 = time.monotonic()
    time.sleep(0.5)
    cmds = inputs.since(t0)
    assert cmds and all(c.throttle == 0.0 and c.brake > 0.0 and c.model_id == "" for c in cmds)
    inputs.proposal = (0.0, 0.3, 0.0)


def test_an_obstacle_in_the_corridor_brakes_until_it_is_gone(graph):
    shield, inputs = graph
    inputs.proposal = (0.0, 0.5, 0.0)
    inputs.lidar_xyz = np.array([[6.0, 0.0, -0.8]] * 20)  # 6 m ahead of the roof LiDAR: 4 m past the bumper
    assert Spinner.wait_for(lambda: "collision_imminent" in inputs.status[-1].interventions, 5.0)
    time.sleep(0.3)
    assert all(c.throttle == 0.0 and c.brake > 0.0 for c in inputs.since(time.monotonic() - 0.2))
    inputs.lidar_xyz = np.zeros((0, 3))
    assert Spinner.wait_for(lambda: inputs.commands[-1][1].throttle > 0.0, 5.0)


def test_a_silent_radar_latches_the_safe_stop_and_braking(graph):
    shield, inputs = graph
    inputs.radar_alive = False
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_SAFE_STOP, 5.0)
    assert any("obstacles/radar" in r for r in inputs.status[-1].reasons)
    time.sleep(0.3)
    assert all(c.throttle == 0.0 and c.brake > 0.0 for c in inputs.since(time.monotonic() - 0.2))
    assert not inputs.call(inputs.reset_client).success
    inputs.radar_alive = True
    inputs.recover()
    assert Spinner.wait_for(lambda: inputs.commands[-1][1].throttle > 0.0, 5.0)


def test_emergency_stop_brakes_at_once_and_nan_speed_is_ignored(graph):
    shield, inputs = graph
    inputs.speed = math.nan
    time.sleep(0.3)
    assert shield.supervisor.counts.get("speed_non_finite", 0) > 0
    inputs.speed = 5.0
    inputs.estop_pub.publish(Bool(data=True))
    assert Spinner.wait_for(lambda: inputs.state() == SafetyStatus.STATE_EMERGENCY, 5.0)
    time.sleep(0.3)
    assert all(c.throttle == 0.0 and c.brake > 0.0 for c in inputs.since(time.monotonic() - 0.2))
    inputs.estop_pub.publish(Bool(data=False))
    inputs.recover()
