"""Action heads."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .config import GraspModelConfig
from .encoders import conv_block


@dataclass
class GraspPrediction:
    """Batched grasp output in the robot base frame (metres, radians)."""

    position: torch.Tensor  # (B, 3)
    yaw: torch.Tensor  # (B,) rotation of the closing axis about base +z, top-down approach
    width: torch.Tensor  # (B,) metres
    score: torch.Tensor  # (B,) peak probability of the grasp heat-map
    heatmap: torch.Tensor  # (B, h, w) log-probabilities over feature cells
    localised: torch.Tensor  # (B,) bool: some cell had valid depth geometry to read a position from


class SpatialGraspHead(nn.Module):
    """Language-conditioned per-cell grasp head.

    The instruction embedding modulates the fused map (FiLM); the head scores every feature cell,
    and predicts per cell the grasp yaw (as sin/cos of 2*yaw: a parallel gripper is symmetric
    under a half turn), the opening width and a height offset. The grasp is read at the best cell
    whose depth geometry is valid; its position is that cell's mean 3-D point plus the offset.
    Spatial heads localise named objects where global-pooled regression does not.
    """

    def __init__(self, config: GraspModelConfig):
        super().__init__()
        self.config = config
        c = config.fused_channels
        self.film = nn.Linear(config.language_dim, 2 * c)
        self.body = nn.Sequential(conv_block(c + 2, c, 1), conv_block(c, c, 1))
        self.out = nn.Conv2d(c, 5, 1)  # logit, sin 2yaw, cos 2yaw, width, dz

    def forward(self, fused: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None) -> GraspPrediction:
        """`instruction` is the pooled sentence embedding (B, D); the mask is unused (one token)."""
        c = self.config.fused_channels
        features, geometry = fused[:, :c], fused[:, c:]
        gamma, beta = self.film(instruction).chunk(2, dim=-1)
        x = features * (1 + gamma[..., None, None]) + beta[..., None, None]
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=x.device).view(1, 1, 1, w).expand(b, 1, h, w)
        out = self.out(self.body(torch.cat([x, ys, xs], dim=1)))

        valid = geometry[:, 3] > 0.5
        logits = out[:, 0].masked_fill(~valid, -1e4).flatten(1)
        log_probs = F.log_softmax(logits, dim=1)
        best = log_probs.argmax(dim=1)
        rows = torch.arange(b, device=x.device)
        at_best = out.flatten(2)[rows, :, best]  # (B, 5)
        dz = 0.05 * torch.tanh(at_best[:, 4])
        position = geometry[:, :3].flatten(2)[rows, :, best].clone()
        position[:, 2] = position[:, 2] + dz
        yaw = 0.5 * torch.atan2(at_best[:, 1], at_best[:, 2])
        width = self.config.max_gripper_width_m * torch.sigmoid(at_best[:, 3])
        return GraspPrediction(position=position, yaw=yaw, width=width,
                               score=log_probs.max(dim=1).values.exp(),
                               heatmap=log_probs.view(b, h, w), localised=valid.flatten(1).any(dim=1))

