"""Fusion of per-sensor feature maps into one spatial representation."""
from __future__ import annotations

import torch
from torch import nn

from .config import GraspModelConfig
from .encoders import DepthEncoder, conv_block


class SpatialFusion(nn.Module):
    """Early fusion of aligned feature maps (channel concatenation, then convolutions).

    A missing modality is replaced by a learned embedding broadcast over the map, and a presence
    channel per modality tells the network which inputs were real. Output: (B, fused_channels + 4,
    h, w) where the last four channels pass the depth geometry (x, y, z, valid fraction) through
    unchanged (zeros when depth is missing).
    """

    def __init__(self, config: GraspModelConfig):
        super().__init__()
        self.config = config
        self.widths = {"rgb": config.rgb_channels, "depth": config.depth_channels}
        self.missing = nn.ParameterDict({
            name: nn.Parameter(torch.zeros(1, width, 1, 1)) for name, width in self.widths.items()})
        cin = sum(self.widths.values()) + len(self.widths)
        self.mix = nn.Sequential(conv_block(cin, config.fused_channels, 1),
                                 conv_block(config.fused_channels, config.fused_channels, 1))

    def forward(self, features: dict[str, torch.Tensor], present=None) -> torch.Tensor:
        """`present` is accepted for the common fusion signature; absent modalities are simply
        not in `features` (the spatial model is run one frame at a time)."""
        known = set(features) - set(self.widths)
        if known:
            raise KeyError(f"fusion received unknown modalities {sorted(known)}")
        if not features:
            raise ValueError("fusion needs at least one modality")
        sample = next(iter(features.values()))
        batch, (h, w) = sample.shape[0], sample.shape[-2:]
        parts, presence = [], []
        geometry = sample.new_zeros(batch, DepthEncoder.geometry_channels, h, w)
        for name, width in self.widths.items():
            feature = features.get(name)
            if feature is None:
                parts.append(self.missing[name].expand(batch, width, h, w))
                presence.append(sample.new_zeros(batch, 1, h, w))
                continue
            if name == "depth":
                feature, geometry = feature[:, :width], feature[:, width:]
            parts.append(feature)
            presence.append(sample.new_ones(batch, 1, h, w))
        fused = self.mix(torch.cat(parts + presence, dim=1))
        return torch.cat([fused, geometry], dim=1)
