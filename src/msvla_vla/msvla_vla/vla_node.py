"""vla_node: FusedObservation + language instruction -> GraspPose proposal.

The instruction is embedded once when it arrives (latched topic), not per frame. An empty
instruction stops proposals.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from rclpy.node import Node
from std_msgs.msg import String

from msvla_core.data.features import FeatureFormatError, feature_to_array
from msvla_core.geometry import top_down_grasp_quaternion
from msvla_core.models.encoders import DepthEncoder
from msvla_core.models.language import SentenceEncoder
from msvla_core.params import ParamSpec
from msvla_msgs.msg import FusedObservation, GraspPose
from msvla_ros.component import MODEL_PARAMS, load_for_node
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter
from msvla_ros.main import run
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import COMMAND, FEATURE, LATCHED

PARAMS = MODEL_PARAMS + [
    ParamSpec("base_frame", "panda_link0", "Frame of the proposed grasp poses (the robot base)."),
    ParamSpec("language_model_dir", "",
              "Local directory of the sentence encoder; empty uses the packaged all-MiniLM-L6-v2."),
]


class VlaNode(Node):
    def __init__(self):
        super().__init__("vla_node")
        values = declare_parameters(self, PARAMS)
        self.head, self.config, self.model_id = load_for_node(self, values, "head")
        self.base_frame = values["base_frame"]
        self.language = SentenceEncoder(values["language_model_dir"] or None)
        if self.language.dim != self.config.language_dim:
            raise ValueError(f"language encoder gives {self.language.dim}-d embeddings but the checkpoint "
                             f"expects language_dim={self.config.language_dim}")
        fh, fw = self.config.feature_size
        self.expected_shape = (self.config.fused_channels + DepthEncoder.geometry_channels, fh, fw)
        self.instruction = ""
        self.embedding: torch.Tensor | None = None
        self.drops = DropCounter(self)
        self.proposed = 0
        self._infer_ms: list[float] = []
        self.pub = self.create_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
        self.create_subscription(String, "/msvla/instruction", self.on_instruction, LATCHED)
        self.create_subscription(FusedObservation, "/msvla/fused", self.on_fused, FEATURE)
        self.diagnostics = Diagnostics(self, "vla", self._report)

    def on_instruction(self, msg: String) -> None:
        text = SentenceEncoder.normalise_text(msg.data)
        self.instruction = text
        self.embedding = self.language.encode([text]) if text else None
        self.get_logger().info(f"instruction: {text!r}" if text else "instruction cleared: no proposals")

    def on_fused(self, msg: FusedObservation) -> None:
        if self.embedding is None:
            return  # idle: nothing was asked
        started = time.perf_counter()
        if msg.component_id != self.model_id:
            self.drops.drop("checkpoint_mismatch", f"FusedObservation.component_id={msg.component_id!r} "
                                                   f"but the head is from checkpoint {self.model_id!r}")
            return
        try:
            fused = feature_to_array(msg, "FusedObservation")
        except FeatureFormatError as exc:
            self.drops.drop("malformed_fused", str(exc))
            return
        if fused.shape != self.expected_shape:
            self.drops.drop("wrong_shape", f"FusedObservation.shape={list(fused.shape)}, expected {list(self.expected_shape)}")
            return
        with torch.inference_mode():
            pred = self.head(torch.from_numpy(fused)[None], self.embedding)
        if not bool(pred.localised[0]):
            self.drops.drop("no_geometry", "no feature cell has valid depth: cannot place a grasp "
                                           f"(modalities present: {list(msg.modalities)})")
            return
        position = pred.position[0].numpy().astype(float)
        q = top_down_grasp_quaternion(float(pred.yaw[0]))
        out = GraspPose(header=msg.header, width=float(pred.width[0]), score=float(pred.score[0]),
                        instruction=self.instruction, model_id=self.model_id)
        out.header.frame_id = self.base_frame
        out.pose.position.x, out.pose.position.y, out.pose.position.z = position
        out.pose.orientation.x, out.pose.orientation.y, out.pose.orientation.z, out.pose.orientation.w = q
        self.pub.publish(out)
        self.proposed += 1
        self._infer_ms.append((time.perf_counter() - started) * 1e3)
        del self._infer_ms[:-200]

    def _report(self):
        values = {"instruction": self.instruction, "proposed": self.proposed,
                  **{f"dropped.{k}": v for k, v in self.drops.items()}}
        if self._infer_ms:
            values["infer_ms_median"] = f"{np.median(self._infer_ms):.2f}"
        return (WARN if self.drops else OK), ("dropping inputs" if self.drops else "ok"), values


def main(args=None) -> int:
    return run(VlaNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
