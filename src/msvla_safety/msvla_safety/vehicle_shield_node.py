"""safety_shield (vehicle mode): VehicleCommand proposals -> VehicleShield -> one command per control tick.

The only node that publishes commands to the vehicle (/msvla/vehicle/command): at control_rate, and
at once when a proposal is accepted, so a proposal does not wait up to a control period to be
executed (the rate and jerk limits use the time actually elapsed since the previous command).
Proposals are limited (steering, rates, acceleration, jerk, speed schedule); without a fresh proposal,
in the safe state or with a collision imminent, the command is the shield's braking profile.

Inputs besides those of every shield (shield_node.py):
  /msvla/proposal/vehicle (VehicleCommand)   the VLA's proposals
  /odom (nav_msgs/Odometry)                  forward speed and yaw rate: twist.twist.linear.x and
                                             angular.z in the child frame
  /lidar/points (PointCloud2: x, y, z)       in the LiDAR frame, placed by lidar_to_base
  /radar/targets (PointCloud2: range, azimuth, radial_velocity)  placed by radar_to_base
"""
from __future__ import annotations

from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2

from msvla_core.data.pointcloud import PointCloudFormatError, pointcloud_to_array
from msvla_core.safety.obstacles import lidar_points_in_base
from msvla_core.safety.params import VEHICLE_PARAMS, vehicle_setup
from msvla_core.safety.vehicle_shield import VehicleOutput, VehicleProposal, VehicleShield
from msvla_msgs.msg import VehicleCommand
from msvla_ros.main import run
from msvla_ros.messages import ns_to_stamp, stamp_to_ns
from msvla_ros.qos import COMMAND, SENSOR

from .shield_node import ShieldNode, steady_ns


class VehicleShieldNode(ShieldNode):
    mode = "vehicle"
    limit_params = tuple(VEHICLE_PARAMS)

    def configure_io(self, values: dict) -> None:
        v = values
        self.command_pub = self.create_lifecycle_publisher(VehicleCommand, "/msvla/vehicle/command", COMMAND)
        self.create_subscription(VehicleCommand, "/msvla/proposal/vehicle", self.on_proposal, COMMAND)
        self.create_subscription(Odometry, "/odom", self.on_odometry, SENSOR)
        self.lidar_to_base, self.radar_to_base = v["lidar_to_base"], v["radar_to_base"]
        if "lidar" in v["obstacle_sources"]:
            self.create_subscription(PointCloud2, "/lidar/points", self.on_lidar, SENSOR)
        if "radar" in v["obstacle_sources"]:
            self.create_subscription(PointCloud2, "/radar/targets", self.on_radar, SENSOR)
        self.model_id = ""

    def make_shield(self, values: dict) -> VehicleShield:
        limits, watchdog = vehicle_setup(values)
        return VehicleShield(limits, watchdog, control_period_s=1.0 / values["control_rate"])

    def on_proposal(self, msg: VehicleCommand) -> None:
        self.flow.received("proposal")
        if not self.active:
            return
        proposal = VehicleProposal(stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                                   steering=float(msg.steering), throttle=float(msg.throttle),
                                   brake=float(msg.brake), model_id=msg.model_id)
        decision = self.shield.check(proposal, self.now_ns(), steady_ns())
        if decision.accepted:
            self.model_id = msg.model_id
            self.on_control()
        else:
            reasons = "; ".join(f"[{c}] {r}" for c, r in decision.interventions)
            self.get_logger().error(f"rejected vehicle proposal: {reasons}", throttle_duration_sec=1.0)

    def on_odometry(self, msg: Odometry) -> None:
        self.flow.received("odom")
        twist = msg.twist.twist
        if not self.shield.on_speed(float(twist.linear.x), steady_ns(), float(twist.angular.z)):
            self.get_logger().error("/odom: twist.twist.linear.x or angular.z is not finite; ignored",
                                    throttle_duration_sec=1.0)

    def on_lidar(self, msg: PointCloud2) -> None:
        self.flow.received("lidar")
        try:
            xyz = pointcloud_to_array(msg, ("x", "y", "z"), skip_nans=False)
        except PointCloudFormatError as exc:
            self.get_logger().error(f"/lidar/points dropped: {exc}", throttle_duration_sec=1.0)
            return
        points = lidar_points_in_base(xyz, self.lidar_to_base)
        self._report_ignored("lidar", self.shield.on_obstacles("lidar", points, steady_ns()), len(points))

    def on_radar(self, msg: PointCloud2) -> None:
        self.flow.received("radar")
        try:
            targets = pointcloud_to_array(msg, ("range", "azimuth", "radial_velocity"), skip_nans=False)
        except PointCloudFormatError as exc:
            self.get_logger().error(f"/radar/targets dropped: {exc}", throttle_duration_sec=1.0)
            return
        ignored = self.shield.on_radar(targets[:, 0], targets[:, 1], targets[:, 2], steady_ns(), self.radar_to_base)
        self._report_ignored("radar", ignored, len(targets))

    def _report_ignored(self, source: str, ignored: int, total: int) -> None:
        if ignored:
            self.get_logger().warn(f"{source}: {ignored} of {total} points non-finite, ignored",
                                   throttle_duration_sec=1.0)

    def on_tick(self, out: VehicleOutput) -> None:
        cmd = VehicleCommand(steering=float(out.steering), throttle=float(out.throttle), brake=float(out.brake),
                             model_id=self.model_id if out.driven_by == "model" else "")
        # A command that follows a proposal keeps its sensor stamp (end-to-end latency is measured
        # from it); one the shield makes up itself (braking, stop hold) is stamped now.
        if out.source_stamp_ns is not None:
            cmd.header.stamp = ns_to_stamp(out.source_stamp_ns)
        else:
            cmd.header.stamp = self.get_clock().now().to_msg()
        cmd.header.frame_id = self.values["base_frame"]
        self.publish_command(self.command_pub, cmd)


def main(args=None) -> int:
    return run(VehicleShieldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
