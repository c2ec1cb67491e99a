"""Pieces shared by the action heads: input checks, token pooling, parameter checks."""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn


def check_tokens(tokens: torch.Tensor, d_model: int, head: str) -> None:
    """Heads see whatever the conditioner emits; a wrong width is a wiring error worth naming."""
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"{head}: tokens must be a tensor (B, N, {d_model}), got {type(tokens).__name__}")
    if tokens.dim() != 3 or tokens.shape[-1] != d_model or tokens.shape[1] < 1:
        raise ValueError(f"{head}: tokens must have shape (B, N>=1, {d_model}), got {tuple(tokens.shape)}")


def target(targets: Mapping[str, torch.Tensor], key: str, shape: tuple, head: str,
           like: torch.Tensor) -> torch.Tensor:
    """Fetch one target, checked against the expected shape (None entries are wildcards)."""
    if key not in targets:
        raise KeyError(f"{head}: targets need {key!r}; got {sorted(targets)}")
    value = torch.as_tensor(targets[key], device=like.device, dtype=like.dtype)
    if value.dim() != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        expected = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{head}: target {key!r} must have shape {expected}, got {tuple(value.shape)}")
    if not torch.isfinite(value).all():
        raise ValueError(f"{head}: target {key!r} contains NaN or inf")
    return value


def check_positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive, got {value!r}")


def check_non_negative(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0, got {value!r}")


class AttentionPool(nn.Module):
    """Learned soft selection of tokens: the instruction decides which sensor tokens matter,
    so a plain mean would dilute the one object the instruction names among many tokens."""

    def __init__(self, d_model: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.score = nn.Linear(d_model, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(tokens)
        weights = torch.softmax(self.score(x).squeeze(-1), dim=1)
        return torch.einsum("bn,bnd->bd", weights, x)


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, d_out))


def relaxed_wta(errors: torch.Tensor, winner: torch.Tensor, relax: float) -> torch.Tensor:
    """Mean over the batch of (1 - relax) * winner's error + relax * mean error of the others.

    Pure winner-takes-all lets a hypothesis that starts far from all data never win and never
    move; once one hypothesis sits between two modes of the data it then wins everything and the
    head collapses to the average. The small pull on the losers brings them into play.
    """
    k = errors.shape[-1]
    win = errors.gather(-1, winner[:, None]).squeeze(-1)
    if k == 1 or relax == 0.0:
        return win.mean()
    others = (errors.sum(-1) - win) / (k - 1)
    return ((1.0 - relax) * win + relax * others).mean()
