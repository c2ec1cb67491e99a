"""Shared base of the token fusion modules: input checks, missing-modality substitution, dropout.

Every fusion module is built as `cls(params, d_model, modalities)` where `modalities` maps each
modality the model knows (in a fixed order, which is the order of `last_presence` columns and of
per-modality output tokens) to its token layout:

- an int N: the encoder always emits N tokens;
- a tuple (h, w): the tokens are a row-major h x w grid (h*w tokens, e.g. a BEV map);
- None: the token count varies (from sample to sample of the sensor, or is not known up front).

A modality is *missing* for sample b when its key is absent from `tokens`, or `present[key][b]` is
False, or modality dropout removed it (training only). Missing samples get the modality's learned
embedding instead of tokens: `Params.missing_tokens` tokens for N / None modalities (at most N),
a full h x w grid for grid modalities. The embedding fills the modality's token slots (repeated
cyclically when the slots outnumber it); only its first K slots count as "valid" for pooling, so
pooled families give exactly the same output for an absent key and for present=False.

Token slots of a missing modality: N for int layouts, h*w for grids; for None layouts the batch's
observed count when the key is given, else K. So for None modalities the concatenating families
(early_concat, cross_modal_transformer) return extra repeat slots with present=False compared with
an absent key; the slots they share are identical.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

Layout = dict[str, "int | tuple[int, int] | None"]


def require_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def require_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over the token axis of (B, N, D) using only tokens where valid (B, N) is True."""
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp_min(1.0)


def present_or_all(presence: torch.Tensor) -> torch.Tensor:
    """Presence (B, M) where samples with nothing present count every (substituted) modality,
    so combinations over present modalities stay defined when a sample lost all its sensors."""
    return presence | ~presence.any(1, keepdim=True)


class Prepared(NamedTuple):
    tokens: dict[str, torch.Tensor]  # per modality (B, N_m, D), missing samples substituted
    valid: dict[str, torch.Tensor]  # per modality (B, N_m) bool: real tokens / the K missing tokens
    presence: torch.Tensor  # (B, M) bool after dropout


class TokenFusion(nn.Module):
    """Base of the fusion modules (see the module docstring); subclasses call `prepare` first."""

    type_name: ClassVar[str] = ""

    @dataclass
    class Params:
        missing_tokens: int = 1  # learned tokens standing in for a missing non-grid modality
        modality_dropout: float = 0.1  # per modality and sample, training mode only

        def __post_init__(self):
            require_int("missing_tokens", self.missing_tokens, 1)
            require_fraction("modality_dropout", self.modality_dropout)

    def __init__(self, params: Any, d_model: int, modalities: Mapping[str, Any]):
        super().__init__()
        require_int("d_model", d_model, 1)
        self.params = params
        self.d_model = d_model
        self.layout = self._check_layout(modalities)
        self.names = list(self.layout)
        self.missing = nn.ParameterDict({
            name: nn.Parameter(torch.randn(self._missing_count(name), d_model) * 0.02)
            for name in self.names})
        self.last_presence: torch.Tensor | None = None  # (B, M) bool, columns in `names` order

    @staticmethod
    def _check_layout(modalities: Any) -> Layout:
        if not isinstance(modalities, Mapping) or not modalities:
            raise ValueError(f"modalities must be a non-empty mapping of modality -> layout, got {modalities!r}")
        layout: Layout = {}
        for name, spec in modalities.items():
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"modalities: invalid modality name {name!r} (non-empty, no '.')")
            if isinstance(spec, (tuple, list)):
                if len(spec) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in spec):
                    raise ValueError(f"modalities[{name!r}]: a grid must be (h, w) positive ints, got {spec!r}")
                spec = (spec[0], spec[1])
            elif spec is not None and (isinstance(spec, bool) or not isinstance(spec, int) or spec < 1):
                raise ValueError(f"modalities[{name!r}]: expected a token count >= 1, (h, w) or None, got {spec!r}")
            layout[name] = spec
        return layout

    def grid_of(self, name: str) -> tuple[int, int] | None:
        spec = self.layout[name]
        return spec if isinstance(spec, tuple) else None

    def token_count(self, name: str) -> int | None:
        """Declared token count of a modality (h*w for grids), None when variable."""
        spec = self.layout[name]
        return spec[0] * spec[1] if isinstance(spec, tuple) else spec

    def _missing_count(self, name: str) -> int:
        if self.grid_of(name) is not None:
            return self.token_count(name)
        count = self.token_count(name)
        return self.params.missing_tokens if count is None else min(self.params.missing_tokens, count)

    # -- inputs ------------------------------------------------------------------------------
    def _check_inputs(self, tokens: Any, present: Any) -> tuple[int, torch.device]:
        if not isinstance(tokens, Mapping):
            raise TypeError(f"tokens must be a dict of modality -> (B, N, D) tensors, got {type(tokens).__name__}")
        if present is not None and not isinstance(present, Mapping):
            raise TypeError(f"present must be a dict of modality -> (B,) bool tensors, got {type(present).__name__}")
        present = present or {}
        for what, keys in (("tokens", tokens), ("present", present)):
            for name in keys:
                if name not in self.layout:
                    raise KeyError(f"{what} has unknown modality {name!r}; this fusion knows {self.names}")
        batch, device = None, self.missing[self.names[0]].device
        for name, x in tokens.items():
            if not isinstance(x, torch.Tensor) or x.dim() != 3:
                raise ValueError(f"tokens[{name!r}] must be a (B, N, {self.d_model}) tensor, got "
                                 f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
            count = self.token_count(name)
            batch = x.shape[0] if batch is None else batch
            if (x.shape[0] != batch or x.shape[2] != self.d_model or x.shape[1] < 1
                    or (count is not None and x.shape[1] != count)):
                expected = f"({batch}, {count if count is not None else 'N>=1'}, {self.d_model})"
                raise ValueError(f"tokens[{name!r}] has shape {tuple(x.shape)}, expected {expected}")
            device = x.device
        for name, p in present.items():
            batch = p.shape[0] if batch is None and isinstance(p, torch.Tensor) and p.dim() == 1 else batch
            if not isinstance(p, torch.Tensor) or p.dtype != torch.bool or tuple(p.shape) != (batch,):
                got = f"{p.dtype} {tuple(p.shape)}" if isinstance(p, torch.Tensor) else type(p).__name__
                raise ValueError(f"present[{name!r}] must be a bool tensor of shape ({batch},), got {got}")
            if name not in tokens and bool(p.any()):
                raise ValueError(f"present[{name!r}] is True for some samples but tokens has no {name!r}")
        if batch is None:
            raise ValueError("fusion needs at least one modality in tokens or present to know the batch size")
        return batch, device

    def _drop(self, presence: torch.Tensor) -> torch.Tensor:
        p = self.params.modality_dropout
        if not self.training or p <= 0.0:
            return presence
        keep = presence & (torch.rand(presence.shape, device=presence.device) >= p)
        emptied = presence.any(1) & ~keep.any(1)
        if bool(emptied.any()):
            # A sample with no sensor at all teaches nothing about fusing them: give one back.
            rows = emptied.nonzero().squeeze(1)
            keep[rows, torch.multinomial(presence[rows].float(), 1).squeeze(1)] = True
        return keep

    def prepare(self, tokens: Mapping[str, torch.Tensor],
                present: Mapping[str, torch.Tensor] | None = None) -> Prepared:
        batch, device = self._check_inputs(tokens, present)
        present = present or {}
        presence = torch.zeros(batch, len(self.names), dtype=torch.bool, device=device)
        for i, name in enumerate(self.names):
            if name in tokens:
                p = present.get(name)
                presence[:, i] = True if p is None else p.to(device)
        presence = self._drop(presence)
        self.last_presence = presence.detach().clone()
        out, valid = {}, {}
        for i, name in enumerate(self.names):
            missing = self.missing[name]
            k = missing.shape[0]
            x = tokens.get(name)
            n = (self.token_count(name) or k) if x is None else x.shape[1]
            slots = torch.arange(n, device=device)
            first_k = (slots < k).unsqueeze(0)
            if x is None:
                out[name] = missing[slots % k].unsqueeze(0).expand(batch, n, self.d_model)
                valid[name] = first_k.expand(batch, n)
                continue
            p = presence[:, i]
            if not bool(p.all()):
                fill = missing[slots % k].to(x.dtype)  # cyclic repeat when the slots outnumber it
                x = torch.where(p[:, None, None], x, fill.unsqueeze(0))
            out[name] = x
            valid[name] = p[:, None] | first_k
        return Prepared(out, valid, presence)

    def pooled(self, prep: Prepared) -> torch.Tensor:
        """One vector per modality (B, M, D): masked mean over its valid tokens."""
        return torch.stack([masked_mean(prep.tokens[n], prep.valid[n]) for n in self.names], 1)

    def forward(self, tokens: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        raise NotImplementedError
