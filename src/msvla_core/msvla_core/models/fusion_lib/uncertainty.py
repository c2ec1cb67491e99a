"""Uncertainty-weighted late fusion: each modality predicts how much it should be trusted."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..registry import FUSIONS
from .late import PooledFusion


@FUSIONS.register("uncertainty_weighted")
class UncertaintyWeightedFusion(PooledFusion):
    """Inverse-variance combination of the per-modality vectors.

    Each modality's pooled vector predicts a log-variance s_m; the combined token is
    sum_m w_m v_m with w_m = exp(-s_m) / sum_present exp(-s_j) over present modalities. A noisy or
    degraded sensor learns a large s_m and fades out without being dropped. Output (B, 1 + M, D)
    like the late families; `last_weights` (B, M) and `last_log_var` (B, M) are kept (the latter
    with gradients, for an optional auxiliary loss).
    """

    @dataclass
    class Params(PooledFusion.Params):
        log_var_limit: float = 6.0  # |s_m| is softly bounded so one sensor cannot take all weight

        def __post_init__(self):
            super().__post_init__()
            if isinstance(self.log_var_limit, bool) or not isinstance(self.log_var_limit, (int, float)) \
                    or not self.log_var_limit > 0:
                raise ValueError(f"log_var_limit must be > 0, got {self.log_var_limit!r}")

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        self.log_var = nn.ModuleList([nn.Linear(d_model, 1) for _ in self.names])
        self.last_log_var: torch.Tensor | None = None

    def combine(self, vectors, presence):
        raw = torch.cat([head(vectors[:, i]) for i, head in enumerate(self.log_var)], 1)
        limit = self.params.log_var_limit
        log_var = limit * torch.tanh(raw / limit)
        self.last_log_var = log_var
        w = torch.softmax((-log_var).masked_fill(~presence, float("-inf")), dim=1)
        return (w.unsqueeze(-1) * vectors).sum(1), w
