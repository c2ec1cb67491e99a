"""Stage fusion: grasp supervision of the whole model with sensor dropout.

Each step feeds one input mode drawn with the configured probabilities (RGB-D, RGB only with the
table-plane geometry, depth only), so the fusion learns to use every sensor and to do without
either camera stream, as the RGB-only and depth-only graphs need.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import check_non_negative
from .task import TaskStage, draw_mode


@dataclass
class Params:
    rgbd: float = 0.6  # probability weights of the input modes
    rgb_only: float = 0.2
    depth_only: float = 0.2

    def __post_init__(self):
        check_non_negative(self, "rgbd", "rgb_only", "depth_only")
        if self.rgbd + self.rgb_only + self.depth_only <= 0:
            raise ValueError("rgbd, rgb_only and depth_only are all 0: no input mode to train")

    def weights(self) -> dict[str, float]:
        return {"rgbd": self.rgbd, "rgb": self.rgb_only, "depth": self.depth_only}


class Fusion(TaskStage):
    name = "fusion"
    Params = Params

    def forward(self, batch, rng):
        # The mode comes from the shared stream: every rank runs the same sub-network in a step.
        mode = draw_mode(self.params.weights(), rng.shared)
        loss, parts = self.task_loss(batch, mode)
        parts["mode_" + mode] = 1.0
        return loss, parts
