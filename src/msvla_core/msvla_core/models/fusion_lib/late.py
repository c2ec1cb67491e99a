"""Late fusion: one pooled vector per modality, combined into a single fused token."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import FUSIONS
from .base import Prepared, TokenFusion, present_or_all


class PooledFusion(TokenFusion):
    """Shared part of the late families: masked-mean pooling per modality, an optional
    per-modality projection (each sensor is processed on its own before combining), and the
    output layout (B, 1 + M, D) = [combined, pooled modality 0, ..., pooled modality M-1], normed.

    `last_weights` (B, M) holds each modality's share of the combined token (0 for modalities
    that were missing while others were present).
    """

    @dataclass
    class Params(TokenFusion.Params):
        project: bool = True  # per-modality LayerNorm + Linear after pooling

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.project = nn.ModuleList([
            nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model)) for _ in self.names
        ]) if params.project else None
        self.norm = nn.LayerNorm(d_model)
        self.last_weights: torch.Tensor | None = None

    def modality_vectors(self, prep: Prepared) -> torch.Tensor:
        pooled = self.pooled(prep)
        if self.project is None:
            return pooled
        return torch.stack([proj(pooled[:, i]) for i, proj in enumerate(self.project)], 1)

    def combine(self, vectors: torch.Tensor, presence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, D), (B, M) -> combined (B, D), weights (B, M)."""
        raise NotImplementedError

    def forward(self, tokens: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        prep = self.prepare(tokens, present)
        vectors = self.modality_vectors(prep)
        combined, weights = self.combine(vectors, present_or_all(prep.presence))
        self.last_weights = weights.detach()
        return self.norm(torch.cat([combined.unsqueeze(1), vectors], 1))


@FUSIONS.register("late_average")
class LateAverageFusion(PooledFusion):
    """Combined token = plain mean of the present modalities' vectors."""

    @dataclass
    class Params(PooledFusion.Params):
        pass

    def combine(self, vectors, presence):
        w = presence.to(vectors.dtype)
        w = w / w.sum(1, keepdim=True)
        return (w.unsqueeze(-1) * vectors).sum(1), w


@FUSIONS.register("late_gated")
class LateGatedFusion(PooledFusion):
    """Combined token = sum of sigmoid-gated present vectors / number present.

    The gates see every modality's vector (missing ones as their learned embedding), so the
    model can close one sensor's gate depending on what the others report; unlike a softmax the
    gates are independent, so all sensors can be trusted (or distrusted) at once.
    """

    @dataclass
    class Params(PooledFusion.Params):
        pass

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.gate = nn.Linear(len(self.names) * d_model, len(self.names))

    def combine(self, vectors, presence):
        gates = torch.sigmoid(self.gate(vectors.flatten(1)))
        p = presence.to(vectors.dtype)
        w = gates * p / p.sum(1, keepdim=True)
        return (w.unsqueeze(-1) * vectors).sum(1), w


@FUSIONS.register("late_attention")
class LateAttentionFusion(PooledFusion):
    """Combined token = attention of a learned query over the present modalities' vectors."""

    @dataclass
    class Params(PooledFusion.Params):
        pass

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.query = nn.Parameter(torch.randn(d_model) * 0.02)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)

    def combine(self, vectors, presence):
        scores = self.key(vectors) @ self.query / math.sqrt(self.d_model)
        w = torch.softmax(scores.masked_fill(~presence, float("-inf")), dim=1)
        return (w.unsqueeze(-1) * self.value(vectors)).sum(1), w
