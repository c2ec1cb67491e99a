"""The RGB-D grasp VLA as one module: encoders -> fusion -> language-conditioned grasp head.
Without depth it runs RGB-only, reading positions from the table-plane geometry of the colour camera.

The live graph runs the same components in separate nodes (encoders in the encoder nodes, fusion in
the fusion node, head in the VLA node); `forward` here is the monolithic reference they must match.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import from_dict
from .config import GraspModelConfig
from .encoders import DepthEncoder, RgbEncoder
from .fusion import SpatialFusion
from .heads import GraspPrediction, SpatialGraspHead

COMPONENTS = ("encoder.rgb", "encoder.depth", "fusion", "policy")


class GraspVLA(nn.Module):
    model_type = "grasp_rgbd"

    def __init__(self, config: GraspModelConfig):
        super().__init__()
        self.config = config
        self.rgb_encoder = RgbEncoder(config)
        self.depth_encoder = DepthEncoder(config)
        self.fusion = SpatialFusion(config)
        self.head = SpatialGraspHead(config)

    @classmethod
    def from_config_dict(cls, data: dict, where: str) -> "GraspVLA":
        return cls(from_dict(GraspModelConfig, data, where=where))

    def component_names(self) -> list[str]:
        return list(COMPONENTS)

    def component(self, name: str) -> nn.Module:
        return {"encoder.rgb": self.rgb_encoder, "encoder.depth": self.depth_encoder,
                "fusion": self.fusion, "policy": self.head}[name]

    def encode(self, rgb: torch.Tensor | None, depth: torch.Tensor | None,
               geometry: torch.Tensor | None,
               rgb_geometry: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`geometry` is the depth geometry; `rgb_geometry` the table-plane geometry of the colour
        camera (preprocessing.plane_geometry), used by fusion only when depth is absent."""
        features = {}
        if rgb is not None:
            features["rgb"] = self.rgb_encoder(rgb, rgb_geometry)
        if depth is not None:
            features["depth"] = self.depth_encoder(depth, geometry)
        return features

    def forward(self, instruction: torch.Tensor, rgb: torch.Tensor | None = None,
                depth: torch.Tensor | None = None, geometry: torch.Tensor | None = None,
                rgb_geometry: torch.Tensor | None = None) -> GraspPrediction:
        fused = self.fusion(self.encode(rgb, depth, geometry, rgb_geometry))
        return self.head(fused, instruction)
