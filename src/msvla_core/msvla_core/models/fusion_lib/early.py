"""Early fusion: every modality's tokens side by side in one sequence."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import FUSIONS
from .base import TokenFusion


@FUSIONS.register("early_concat")
class EarlyConcatFusion(TokenFusion):
    """Concatenate all modalities' tokens (missing ones substituted) along the token axis.

    A learned per-modality embedding is added so that downstream attention can tell the sensors
    apart, then a shared linear + LayerNorm mixes channels token by token. Output (B, sum N_m, D),
    modalities in `names` order. Each token is processed on its own, so cost is linear in N.
    """

    @dataclass
    class Params(TokenFusion.Params):
        pass

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.modality_embed = nn.Parameter(torch.randn(len(self.names), d_model) * 0.02)
        self.proj = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        prep = self.prepare(tokens, present)
        seq = torch.cat([prep.tokens[n] + self.modality_embed[i] for i, n in enumerate(self.names)], 1)
        return self.norm(self.proj(seq))
