"""safety_shield: GraspPose proposals -> GraspLimits checks -> shielded GraspPose (or nothing).

The only node that publishes to the robot's command topic. Every decision is reported on
/msvla/safety/status with the reasons of each rejection.
"""
from __future__ import annotations

from rclpy.node import Node

from msvla_core.params import ParamSpec
from msvla_core.safety import GraspLimits, GraspProposal, GraspShield
from msvla_msgs.msg import GraspPose, SafetyStatus
from msvla_ros.diagnostics import OK, WARN, Diagnostics
from msvla_ros.main import run
from msvla_ros.messages import stamp_to_ns
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import COMMAND

PARAMS = [
    ParamSpec("workspace_min", [0.25, -0.35, 0.0], "Lower corner (x, y, z) of the allowed grasp box in the base frame.", unit="m"),
    ParamSpec("workspace_max", [0.80, 0.35, 0.45], "Upper corner (x, y, z) of the allowed grasp box in the base frame.", unit="m"),
    ParamSpec("min_width", 0.0, "Smallest allowed gripper opening.", unit="m", min=0.0, max=0.2),
    ParamSpec("max_width", 0.08, "Largest allowed gripper opening.", unit="m", min=0.0, max=0.2),
    ParamSpec("min_score", 0.0, "Proposals with a lower model score are rejected.", min=0.0, max=1.0),
    ParamSpec("max_age", 0.5, "Proposals whose sensor stamp is older than this are rejected as stale.", unit="s", min=0.001, max=10.0),
    ParamSpec("future_tolerance", 0.05, "Proposals stamped further ahead of this node's clock are rejected.", unit="s", min=0.0, max=1.0),
    ParamSpec("base_frame", "panda_link0", "Required frame_id of proposals."),
    ParamSpec("expected_model_id", "", "Reject proposals from any other checkpoint; empty accepts any."),
]


class SafetyShieldNode(Node):
    def __init__(self):
        super().__init__("safety_shield")
        v = declare_parameters(self, PARAMS)
        limits = GraspLimits(workspace_min=tuple(v["workspace_min"]), workspace_max=tuple(v["workspace_max"]),
                             min_width_m=v["min_width"], max_width_m=v["max_width"], min_score=v["min_score"],
                             max_age_s=v["max_age"], future_tolerance_s=v["future_tolerance"],
                             frame_id=v["base_frame"], expected_model_id=v["expected_model_id"])
        self.shield = GraspShield(limits)
        self.last_interventions: list[tuple[str, str]] = []
        self.grasp_pub = self.create_publisher(GraspPose, "/msvla/grasp", COMMAND)
        self.status_pub = self.create_publisher(SafetyStatus, "/msvla/safety/status", COMMAND)
        self.create_subscription(GraspPose, "/msvla/proposal/grasp", self.on_proposal, COMMAND)
        self.diagnostics = Diagnostics(self, "safety/grasp", self._report)
        self.get_logger().info(f"grasp limits: {limits}")

    def on_proposal(self, msg: GraspPose) -> None:
        p, o = msg.pose.position, msg.pose.orientation
        proposal = GraspProposal(stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                                 position=(p.x, p.y, p.z), orientation=(o.x, o.y, o.z, o.w),
                                 width=msg.width, score=msg.score, model_id=msg.model_id)
        decision = self.shield.check(proposal, self.get_clock().now().nanoseconds)
        self.last_interventions = decision.interventions
        if decision.accepted:
            self.grasp_pub.publish(msg)
        else:
            reasons = "; ".join(reason for _, reason in decision.interventions)
            self.get_logger().error(f"rejected grasp proposal: {reasons}", throttle_duration_sec=1.0)
        self._publish_status(decision.accepted)

    def _publish_status(self, accepted: bool) -> None:
        status = SafetyStatus(mode="grasp", rejected=self.shield.rejected, passed=self.shield.passed,
                              state=SafetyStatus.STATE_OK if accepted else SafetyStatus.STATE_INTERVENING,
                              interventions=[c for c, _ in self.last_interventions],
                              reasons=[r for _, r in self.last_interventions])
        status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(status)

    def _report(self):
        values = {"passed": self.shield.passed, "rejected": self.shield.rejected,
                  **{f"rejected.{k}": n for k, n in self.shield.counts.items()}}
        level = OK if not self.last_interventions else WARN
        return level, "; ".join(r for _, r in self.last_interventions) or "ok", values


def main(args=None) -> int:
    return run(SafetyShieldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
