"""vla_node: FusedObservation + language instruction -> action proposal.

Grasp heads publish GraspPose on /msvla/proposal/grasp, vehicle heads VehicleCommand on
/msvla/proposal/vehicle. The instruction is embedded once when it arrives (latched topic), not per
frame; an empty instruction stops proposals. A Heartbeat on /msvla/vla/heartbeat, sent at a fixed
rate whether or not there is an instruction, tells the safety shield the node is alive and whether
the model's recent outputs were usable (ERROR after non-finite actions).

A managed node: configure loads the checkpoint's policy and the instruction encoder (and fails
with the reason), activate starts proposals and heartbeats, deactivate stops both - which the
shield's watchdog then treats as a dead model.
"""
from __future__ import annotations

import time

import torch
from sensor_msgs.msg import Image
from std_msgs.msg import String

from msvla_core.data.features import FeatureFormatError, feature_to_array
from msvla_core.models.actions import GraspAction, NoAction, action_from_outputs, heatmap_mono8, is_finite
from msvla_core.models.shapes import describe_shape, expected_fused_shape, shape_matches
from msvla_core.params import ParamSpec
from msvla_msgs.msg import FusedObservation, GraspPose, Heartbeat, VehicleCommand
from msvla_ros.component import MODEL_PARAMS, load_for_node
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter, FlowStats, age_ms
from msvla_ros.main import run
from msvla_ros.managed import AUTOSTART, ManagedNode
from msvla_ros.messages import ns_to_stamp, oldest_stamp_ns
from msvla_ros.qos import COMMAND, FEATURE, HEARTBEAT, LATCHED

from .instructions import load_instruction_encoder

PARAMS = MODEL_PARAMS + [
    AUTOSTART,
    ParamSpec("base_frame", "panda_link0", "Frame of the proposed actions (the robot base)."),
    ParamSpec("language_model_dir", "",
              "Local directory of the instruction encoder; empty uses the checkpoint's choice "
              "(the packaged all-MiniLM-L6-v2 by default)."),
    ParamSpec("heartbeat_rate", 20.0, "Rate of /msvla/vla/heartbeat.", unit="Hz", min=1.0, max=1000.0),
    ParamSpec("publish_heatmap", False, "Publish the grasp head's per-cell probabilities as a mono8 Image "
              "on /msvla/vla/heatmap (the feature grid over the camera image; for rviz)."),
    ParamSpec("fault_hold", 1.0, "How long the heartbeat reports ERROR after the policy produced non-finite "
              "values.", unit="s", min=0.0, max=60.0),
]


class VlaNode(ManagedNode):
    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("vla_node", **node_kwargs)
        self.instruction = ""
        self.embedding = None
        self.proposed = 0
        self._fault_hold_s = self.values["fault_hold"]
        self._last_fault: tuple[float, str] | None = None  # (monotonic time, what was wrong)
        self._beats = 0

    def configure(self, values: dict) -> None:
        self.policy, self.config, self.model_id = load_for_node(self, values, "policy")
        self.base_frame = values["base_frame"]
        self.language = load_instruction_encoder(self.config, values["language_model_dir"])
        self.expected_shape = expected_fused_shape(self.config)
        self.drops = DropCounter(self)
        self.flow = FlowStats()
        self.grasp_pub = self.create_lifecycle_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
        self.vehicle_pub = self.create_lifecycle_publisher(VehicleCommand, "/msvla/proposal/vehicle", COMMAND)
        self.create_subscription(String, "/msvla/instruction", self.on_instruction, LATCHED)
        self.create_subscription(FusedObservation, "/msvla/fused", self.on_fused, FEATURE)
        self.heartbeat_pub = self.create_lifecycle_publisher(Heartbeat, "/msvla/vla/heartbeat", HEARTBEAT)
        self.heatmap_pub = (self.create_lifecycle_publisher(Image, "/msvla/vla/heatmap", FEATURE)
                            if values["publish_heatmap"] else None)
        self.create_timer(1.0 / values["heartbeat_rate"], self.on_heartbeat)
        self.diagnostics = Diagnostics(self, "vla", self._report)

    def on_instruction(self, msg: String) -> None:
        text = " ".join(msg.data.split())
        self.instruction = text
        self.embedding = self.language(text) if text else None
        self.get_logger().info(f"instruction: {text!r}" if text else "instruction cleared: no proposals")

    def on_fused(self, msg: FusedObservation) -> None:
        self.flow.received("fused")
        if self.embedding is None or not self.active:
            return  # idle: nothing was asked, or deactivated
        started = time.perf_counter()
        if msg.component_id != self.model_id:
            self.drops.drop("checkpoint_mismatch", f"FusedObservation.component_id={msg.component_id!r} "
                                                   f"but the policy is from checkpoint {self.model_id!r}")
            return
        try:
            fused = feature_to_array(msg, "FusedObservation")
        except FeatureFormatError as exc:
            self.drops.drop("malformed_fused", str(exc))
            return
        if not shape_matches(fused.shape, self.expected_shape):
            self.drops.drop("wrong_shape", f"FusedObservation.shape={list(fused.shape)}, "
                                           f"expected {describe_shape(self.expected_shape)}")
            return
        with torch.inference_mode():
            outputs = self.policy(torch.from_numpy(fused)[None], *self.embedding)
        try:
            action = action_from_outputs(outputs)
        except NoAction as exc:
            self.drops.drop("no_action", f"{exc} (modalities present: {list(msg.modalities)})")
            return
        if not is_finite(action):
            detail = f"the policy produced non-finite values: {action}"
            self.drops.drop("non_finite_action", detail)
            self._last_fault = (time.monotonic(), detail)
            return
        self._publish(msg.header, action, msg.ages)
        if self.heatmap_pub is not None:
            heat = heatmap_mono8(outputs)
            if heat is not None:
                self.heatmap_pub.publish(Image(header=msg.header, height=heat.shape[0], width=heat.shape[1],
                                               encoding="mono8", step=heat.shape[1], data=heat.tobytes()))
        self.proposed += 1
        self.flow.published((time.perf_counter() - started) * 1e3, age_ms(self, msg.header.stamp))

    def on_heartbeat(self) -> None:
        if not self.active:
            return
        self._beats += 1
        beat = Heartbeat(level=Heartbeat.LEVEL_OK, model_id=self.model_id, sequence=self._beats)
        if self._last_fault is not None and time.monotonic() - self._last_fault[0] <= self._fault_hold_s:
            beat.level, beat.message = Heartbeat.LEVEL_ERROR, self._last_fault[1]
        beat.header.stamp = self.get_clock().now().to_msg()
        self.heartbeat_pub.publish(beat)

    def _publish(self, header, action, ages) -> None:
        if isinstance(action, GraspAction):
            out = GraspPose(header=header, width=action.width, score=action.score,
                            instruction=self.instruction, model_id=self.model_id)
            out.pose.position.x, out.pose.position.y, out.pose.position.z = (float(v) for v in action.position)
            q = out.pose.orientation
            q.x, q.y, q.z, q.w = (float(v) for v in action.quaternion)
            pub = self.grasp_pub
        else:
            out = VehicleCommand(header=header, steering=action.steering, throttle=action.throttle,
                                 brake=action.brake, model_id=self.model_id)
            out.header.stamp = ns_to_stamp(oldest_stamp_ns(header, ages))
            pub = self.vehicle_pub
        out.header.frame_id = self.base_frame
        pub.publish(out)

    def _report(self):
        values = {"active": self.active, "instruction": self.instruction, "proposed": self.proposed,
                  **{f"dropped.{k}": v for k, v in self.drops.items()}}
        values.update(self.flow.values())
        if not self.active:
            return WARN, "inactive: no proposals, no heartbeat", values
        return (WARN if self.drops else OK), ("dropping inputs" if self.drops else "ok"), values


def main(args=None) -> int:
    return run(VlaNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
