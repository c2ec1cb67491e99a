"""safety_shield (grasp mode): GraspPose proposals -> GraspShield -> shielded GraspPose, or nothing.

The only node that publishes grasp targets to the robot (/msvla/grasp). A target passes unchanged
or not at all; in the safe state nothing passes, and the robot's executor is expected to abort a
motion in progress when /msvla/safety/status leaves OK/INTERVENING.
"""
from __future__ import annotations

import time

from msvla_core.safety import GraspProposal, GraspShield
from msvla_core.safety.params import GRASP_PARAMS, grasp_setup
from msvla_msgs.msg import GraspPose
from msvla_ros.main import run
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND

from .shield_node import ShieldNode, steady_ns


class GraspShieldNode(ShieldNode):
    mode = "grasp"
    limit_params = tuple(GRASP_PARAMS)

    def configure_io(self, values: dict) -> None:
        self.grasp_pub = self.create_lifecycle_publisher(GraspPose, "/msvla/grasp", COMMAND)
        self.create_subscription(GraspPose, "/msvla/proposal/grasp", self.on_proposal, COMMAND)

    def make_shield(self, values: dict) -> GraspShield:
        return GraspShield(*grasp_setup(values))

    def on_proposal(self, msg: GraspPose) -> None:
        started = time.perf_counter()
        self.flow.received("proposal")
        if not self.active:
            return
        p, o = msg.pose.position, msg.pose.orientation
        proposal = GraspProposal(stamp_ns=stamp_to_ns(msg.header.stamp), frame_id=msg.header.frame_id,
                                 position=(p.x, p.y, p.z), orientation=(o.x, o.y, o.z, o.w),
                                 width=msg.width, score=msg.score, model_id=msg.model_id,
                                 instruction=msg.instruction)
        decision = self.shield.check(proposal, self.now_ns(), steady_ns())
        if decision.accepted:
            self.publish_command(self.grasp_pub, msg, started)
        else:
            reasons = "; ".join(f"[{c}] {r}" for c, r in decision.interventions)
            self.get_logger().error(f"rejected grasp proposal: {reasons}", throttle_duration_sec=1.0)
        self.publish_status(force=True)


def main(args=None) -> int:
    return run(GraspShieldNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
