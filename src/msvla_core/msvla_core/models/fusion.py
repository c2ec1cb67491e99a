"""Fusion of per-sensor feature maps into one spatial representation."""
from __future__ import annotations

import torch
from torch import nn

from .config import GraspModelConfig
from .encoders import DepthEncoder, RgbEncoder, conv_block
from .shapes import Shape, expected_feature_shape


def accepted_feature_shapes(config, modality: str) -> list[Shape]:
    """SensorFeature shapes the fusion of this checkpoint takes from `modality`: the encoder's
    output, and for the grasp model's RGB also that output with the table-plane geometry."""
    expected = expected_feature_shape(config, modality)
    if isinstance(config, GraspModelConfig) and modality == "rgb":
        return [expected, (expected[0] + RgbEncoder.geometry_channels, *expected[1:])]
    return [expected]


class SpatialFusion(nn.Module):
    """Early fusion of aligned feature maps (channel concatenation, then convolutions).

    A missing modality is replaced by a learned embedding broadcast over the map, and a presence
    channel per modality tells the network which inputs were real. Output: (B, fused_channels + 4,
    h, w) where the last four channels pass base-frame geometry (x, y, z, valid fraction) through
    unchanged: the depth geometry when depth is present (measured, so it wins), else the geometry
    the RGB feature carries (table plane) if any, else zeros.
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
        parts, presence, geometries = [], [], {}
        for name, width in self.widths.items():
            feature = features.get(name)
            if feature is None:
                parts.append(self.missing[name].expand(batch, width, h, w))
                presence.append(sample.new_zeros(batch, 1, h, w))
                continue
            if name == "depth" or feature.shape[1] == width + RgbEncoder.geometry_channels:
                feature, geometries[name] = feature[:, :width], feature[:, width:]
            elif feature.shape[1] != width:
                raise ValueError(f"{name} feature has {feature.shape[1]} channels; expected {width} "
                                 f"or {width + RgbEncoder.geometry_channels} (with geometry)")
            parts.append(feature)
            presence.append(sample.new_ones(batch, 1, h, w))
        fused = self.mix(torch.cat(parts + presence, dim=1))
        geometry = geometries.get("depth", geometries.get("rgb"))
        if geometry is None:
            geometry = sample.new_zeros(batch, DepthEncoder.geometry_channels, h, w)
        return torch.cat([fused, geometry], dim=1)
