"""Stage align: cross-modal InfoNCE between the RGB and the depth encoder.

Pooled per-sample embeddings of the two modalities (training-only projection heads) are aligned
pairwise (the RGB and depth views of one sample are positives, other samples negatives) and to a
hub, the normalised mean of both modalities' embeddings. An optional dense term aligns feature
cells: the RGB and depth cells at the same location of the same sample are positives, every
other sampled cell of the batch a negative. Only the learned depth channels take part: the
geometry the depth encoder appends is data, not a representation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..losses import info_nce
from .base import Stage, check_non_negative, check_positive
from .pretrain_rgb import projection_head


@dataclass
class Params:
    temperature: float = 0.1
    projection_dim: int = 64
    pairwise_weight: float = 1.0
    hub_weight: float = 0.5
    dense_weight: float = 0.5  # 0 switches the per-cell term off
    dense_cells: int = 16  # cells sampled per image for the dense term

    def __post_init__(self):
        check_positive(self, "temperature", "projection_dim", "dense_cells")
        check_non_negative(self, "pairwise_weight", "hub_weight", "dense_weight")
        if self.pairwise_weight + self.hub_weight + self.dense_weight == 0:
            raise ValueError("pairwise_weight, hub_weight and dense_weight are all 0: nothing to train")


class Align(Stage):
    name = "align"
    Params = Params
    components = ("encoder.rgb", "encoder.depth")
    inputs = ("rgb", "depth", "geometry")

    def __init__(self, model, params: Params):
        super().__init__(model, params)
        c_rgb, c_depth, d = model.config.rgb_channels, model.config.depth_channels, params.projection_dim
        self.rgb_projection = projection_head(c_rgb, d)
        self.depth_projection = projection_head(c_depth, d)
        self.rgb_cells = nn.Conv2d(c_rgb, d, 1)
        self.depth_cells = nn.Conv2d(c_depth, d, 1)

    def uses_every_parameter(self) -> bool:
        p = self.params
        return min(p.pairwise_weight + p.hub_weight, p.dense_weight) > 0

    def forward(self, batch, rng):
        p = self.params
        rgb_map = self.model.rgb_encoder(batch["rgb"])
        depth_map = self.model.depth_encoder(batch["depth"], batch["geometry"])[:, :self.model.config.depth_channels]
        z_rgb = self.rgb_projection(rgb_map.mean(dim=(2, 3)))
        z_depth = self.depth_projection(depth_map.mean(dim=(2, 3)))
        parts, loss = {}, z_rgb.new_zeros(())
        if p.pairwise_weight > 0:
            pair = info_nce(z_rgb, z_depth, p.temperature)
            loss, parts["pairwise"] = loss + p.pairwise_weight * pair, pair.item()
        if p.hub_weight > 0:
            hub = F.normalize(F.normalize(z_rgb.float(), dim=1) + F.normalize(z_depth.float(), dim=1), dim=1)
            hub_loss = 0.5 * (info_nce(z_rgb, hub, p.temperature) + info_nce(z_depth, hub, p.temperature))
            loss, parts["hub"] = loss + p.hub_weight * hub_loss, hub_loss.item()
        if p.dense_weight > 0:
            b, _, h, w = rgb_map.shape
            k = min(p.dense_cells, h * w)
            # Same cells for every sample; drawn from the shared stream so all ranks agree.
            cells = torch.randperm(h * w, generator=rng.shared)[:k].to(rgb_map.device)
            q_rgb = self.rgb_cells(rgb_map).flatten(2)[:, :, cells].permute(0, 2, 1).reshape(b * k, -1)
            q_depth = self.depth_cells(depth_map).flatten(2)[:, :, cells].permute(0, 2, 1).reshape(b * k, -1)
            dense = info_nce(q_rgb, q_depth, p.temperature)
            loss, parts["dense"] = loss + p.dense_weight * dense, dense.item()
        with torch.no_grad():
            sim = F.normalize(z_rgb.float(), dim=1) @ F.normalize(z_depth.float(), dim=1).t()
            parts["top1"] = (sim.argmax(dim=1) == torch.arange(sim.shape[0], device=sim.device)).float().mean().item()
        return loss, parts
