"""Diagonal Gaussian policy over a continuous action vector."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..registry import HEADS
from .common import AttentionPool, check_positive, check_tokens, mlp, target


@HEADS.register("gaussian")
class GaussianHead(nn.Module):
    """Mean and per-dimension log standard deviation of the action, as stochastic policies
    (RL fine-tuning, behaviour cloning with noisy demonstrations) need a likelihood.

    Outputs: mean (B, A), log_std (B, A) within [log_std_min, log_std_max], action (B, A) = mean
    (the deterministic action to execute). Units are those of the action vector the trainer uses.
    Loss: nll, the negative log-likelihood of targets["action"] (B, A) summed over dimensions.
    """

    @dataclass
    class Params:
        action_dim: int = 7
        hidden: int = 128
        log_std_min: float = -5.0
        log_std_max: float = 2.0
        # True: one learned std per dimension, shared by all inputs (steadier early RL training).
        state_independent_std: bool = False

        def __post_init__(self):
            check_positive(self, "action_dim", "hidden")
            if not (math.isfinite(self.log_std_min) and math.isfinite(self.log_std_max)
                    and self.log_std_min < self.log_std_max):
                raise ValueError(f"log_std_min={self.log_std_min} must be finite and below "
                                 f"log_std_max={self.log_std_max}")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        self.params, self.d_model = params, d_model
        a = params.action_dim
        self.pool = AttentionPool(d_model)
        self.body = mlp(d_model, params.hidden, a if params.state_independent_std else 2 * a)
        if params.state_independent_std:
            self.log_std_raw = nn.Parameter(torch.zeros(a))

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "gaussian")
        a = self.params.action_dim
        raw = self.body(self.pool(tokens))
        mean = raw[:, :a]
        std_raw = self.log_std_raw.expand_as(mean) if self.params.state_independent_std else raw[:, a:]
        # A smooth squash instead of a hard clamp: a clamped std gets no gradient once it hits the
        # bound, and a collapsed std would make the NLL blow up on the next outlier.
        lo, hi = self.params.log_std_min, self.params.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(std_raw) + 1.0)
        return {"mean": mean, "log_std": log_std, "action": mean}

    def sample(self, outputs: Mapping[str, torch.Tensor],
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One action per row (B, A), reparameterised so gradients reach mean and log_std."""
        mean, log_std = outputs["mean"], outputs["log_std"]
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + log_std.exp() * noise

    def log_prob(self, outputs: Mapping[str, torch.Tensor], action: torch.Tensor) -> torch.Tensor:
        """Log-density (B,) of actions (B, A) under the predicted Gaussians."""
        mean, log_std = outputs["mean"], outputs["log_std"]
        z = (action - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mean = outputs["mean"]
        action = target(targets, "action", tuple(mean.shape), "gaussian", mean)
        nll = -self.log_prob(outputs, action).mean()
        return {"nll": nll, "mse": (mean - action).detach().pow(2).mean(), "total": nll}
