"""Stage pretrain_depth: depth completion pretraining of the depth encoder.

Random square patches of the depth input lose both their value and their validity (as a sensor
hole would look after preprocessing); the depth encoder's learned features feed a training-only
decoder that predicts the full range-normalised depth, scored by L1 on the masked pixels that
were valid before masking.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from msvla_core.models.encoders import conv_block

from . import augment
from .base import Stage, check_fraction, check_positive


@dataclass
class Params:
    mask_ratio: float = 0.5  # fraction of patches masked
    patch_size: int = 16  # pixels

    def __post_init__(self):
        check_fraction(self, "mask_ratio")
        check_positive(self, "patch_size")
        if self.mask_ratio == 0.0:
            raise ValueError("mask_ratio must be > 0 (nothing to complete otherwise)")


class DepthDecoder(nn.Module):
    """Feature map at stride 4 -> normalised depth at full resolution."""

    def __init__(self, cin: int):
        super().__init__()
        self.net = nn.Sequential(conv_block(cin, 32, 1), nn.Upsample(scale_factor=2, mode="nearest"),
                                 conv_block(32, 16, 1), nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(16, 1, 3, padding=1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(features))


class PretrainDepth(Stage):
    name = "pretrain_depth"
    Params = Params
    components = ("encoder.depth",)
    inputs = ("depth", "geometry")

    def __init__(self, model, params: Params):
        super().__init__(model, params)
        self.decoder = DepthDecoder(model.config.depth_channels)

    def uses_every_parameter(self) -> bool:
        return True

    def forward(self, batch, rng):
        depth = batch["depth"]
        holes = augment.patch_mask(depth.shape, rng.local, self.params.mask_ratio, self.params.patch_size,
                                   depth.device)
        masked = torch.cat([depth[:, :1] * (1 - holes), depth[:, 1:2] * (1 - holes)], dim=1)
        width = self.model.config.depth_channels
        features = self.model.depth_encoder(masked, batch["geometry"])[:, :width]
        pred = self.decoder(features).float()
        scored = holes * (depth[:, 1:2] > 0.5).float()
        error = (pred - depth[:, :1]).abs()
        loss = (error * scored).sum() / scored.sum().clamp(min=1.0)
        with torch.no_grad():
            seen = (1 - holes) * (depth[:, 1:2] > 0.5).float()
            visible = (error * seen).sum() / seen.sum().clamp(min=1.0)
        return loss, {"l1_masked": loss.item(), "l1_visible": visible.item()}
