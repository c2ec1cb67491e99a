"""BEV fusion: grid modalities resampled onto one bird's-eye-view grid and mixed by convolutions."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import FUSIONS
from .base import TokenFusion, masked_mean, require_int


def _conv_block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.GroupNorm(groups, cout), nn.GELU())


@FUSIONS.register("bev")
class BEVFusion(TokenFusion):
    """Fuse grid-token modalities on a common (H, W) = Params.grid BEV grid.

    Each grid modality (h, w) (missing ones as their learned full-grid embedding) is resampled
    bilinearly to (H, W); their channels are concatenated with one presence channel per known
    modality, reduced to D channels by a 1x1 conv block (the wide concatenation is only mixed per
    cell, which keeps the cost low) and mixed spatially by `conv_layers` 3x3 conv blocks. Non-grid
    modalities cannot be placed on the grid, so each is pooled to a vector and, through its own
    linear, scales and shifts the reduced features (FiLM) before the 3x3 blocks.
    Output (B, H*W, D), row-major like encoder grids; `grid` gives (H, W). The encoders' grids are
    assumed to cover the same area, only their resolutions differ (bilinear, antialiased when
    shrinking).
    """

    @dataclass
    class Params(TokenFusion.Params):
        grid: tuple[int, int] = (16, 16)
        conv_layers: int = 2

        def __post_init__(self):
            super().__post_init__()
            if (not isinstance(self.grid, (tuple, list)) or len(self.grid) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.grid)):
                raise ValueError(f"grid must be (H, W) positive ints, got {self.grid!r}")
            require_int("conv_layers", self.conv_layers, 1)

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.grid_names = [n for n in self.names if self.grid_of(n) is not None]
        self.vector_names = [n for n in self.names if self.grid_of(n) is None]
        if not self.grid_names:
            raise ValueError(f"modalities: bev fusion needs at least one grid (h, w) modality, got {self.layout}")
        cin = len(self.grid_names) * d_model + len(self.names)
        self.first = _conv_block(cin, d_model, 1)
        self.film = nn.ModuleDict({n: nn.Linear(d_model, 2 * d_model) for n in self.vector_names})
        self.rest = nn.Sequential(*[_conv_block(d_model, d_model, 3) for _ in range(params.conv_layers)])
        self.out = nn.Conv2d(d_model, d_model, 1)
        self.norm = nn.LayerNorm(d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.params.grid)

    def forward(self, tokens: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        prep = self.prepare(tokens, present)
        size = self.grid
        maps = []
        for name in self.grid_names:
            (h, w), x = self.grid_of(name), prep.tokens[name]
            x = x.transpose(1, 2).reshape(x.shape[0], self.d_model, h, w)
            if (h, w) != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                  antialias=h > size[0] or w > size[1])
            maps.append(x)
        batch = prep.presence.shape[0]
        presence = prep.presence.to(maps[0].dtype)[:, :, None, None].expand(batch, len(self.names), *size)
        feat = self.first(torch.cat(maps + [presence], 1))
        if self.vector_names:
            film = sum(self.film[n](masked_mean(prep.tokens[n], prep.valid[n])) for n in self.vector_names)
            scale, shift = film.chunk(2, dim=1)
            feat = feat * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        feat = self.out(self.rest(feat))
        return self.norm(feat.flatten(2).transpose(1, 2))

