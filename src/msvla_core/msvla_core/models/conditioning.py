"""Language conditioning: inject the instruction into the fused sensor tokens.

All conditioners take fused (B, N, D), instruction (B, L, D_lang) and instruction_mask (B, L) bool
(True = real token; None = all real). A pooled sentence embedding is simply L = 1 (see
language_backbones.sentence_tokens); a causal-LM backbone gives per-token states. An instruction
whose mask is all False (empty text) is legal: attention then falls back to a learned null token.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .registry import CONDITIONERS


def _check_inputs(name: str, fused: torch.Tensor, instruction: torch.Tensor,
                  mask: torch.Tensor | None, d_model: int, language_dim: int) -> torch.Tensor:
    """Validate shapes; returns the mask as bool (B, L)."""
    if fused.dim() != 3 or fused.shape[-1] != d_model:
        raise ValueError(f"{name}: fused must have shape (B, N, {d_model}), got {tuple(fused.shape)}")
    b = fused.shape[0]
    if instruction.dim() != 3 or instruction.shape[0] != b or instruction.shape[-1] != language_dim:
        raise ValueError(f"{name}: instruction must have shape ({b}, L, {language_dim}), "
                         f"got {tuple(instruction.shape)}")
    if mask is None:
        return torch.ones(instruction.shape[:2], dtype=torch.bool, device=instruction.device)
    if tuple(mask.shape) != tuple(instruction.shape[:2]):
        raise ValueError(f"{name}: instruction_mask must have shape {tuple(instruction.shape[:2])}, "
                         f"got {tuple(mask.shape)}")
    return mask.bool()


def _positive_ints(params, fields: tuple[str, ...]) -> None:
    for field in fields:
        value = getattr(params, field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{field} must be a positive integer, got {value!r}")


def _check_heads(heads: int, d_model: int) -> None:
    if d_model % heads:
        raise ValueError(f"heads={heads} must divide d_model={d_model}")


def _check_dropout(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {value}")


class _InstructionKeys(nn.Module):
    """Instruction tokens projected to d_model, with a learned always-valid null token in front.

    The null token gives attention somewhere to go when the instruction is empty (a fully masked
    softmax is NaN) or irrelevant to a token. The LayerNorm first puts MiniLM's unit-norm vectors
    and an LLM's large hidden states on the same footing.
    """

    def __init__(self, language_dim: int, d_model: int):
        super().__init__()
        self.project = nn.Sequential(nn.LayerNorm(language_dim), nn.Linear(language_dim, d_model))
        self.null = nn.Parameter(torch.zeros(1, 1, d_model))

    def forward(self, instruction: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = instruction.shape[0]
        keys = torch.cat([self.null.expand(b, -1, -1), self.project(instruction)], dim=1)
        valid = torch.cat([mask.new_ones(b, 1), mask], dim=1)
        return keys, ~valid  # key_padding_mask convention: True = ignore


class _CrossBlock(nn.Module):
    def __init__(self, d_model: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm_q = nn.LayerNorm(d_model)
        self.attend = nn.MultiheadAttention(d_model, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                nn.Dropout(dropout), nn.Linear(mlp_ratio * d_model, d_model))

    def forward(self, x: torch.Tensor, keys: torch.Tensor, ignore: torch.Tensor) -> torch.Tensor:
        x = x + self.attend(self.norm_q(x), keys, keys, key_padding_mask=ignore, need_weights=False)[0]
        return x + self.ff(self.norm_ff(x))


@CONDITIONERS.register("cross_attention")
class CrossAttentionConditioner(nn.Module):
    """Every fused token attends to the instruction tokens (pre-norm residual attention + MLP,
    repeated `layers` times). Output (B, N, D): same tokens, same order, so spatial grids survive."""

    @dataclass
    class Params:
        layers: int = 1
        heads: int = 4
        mlp_ratio: int = 2
        dropout: float = 0.0

        def __post_init__(self):
            _positive_ints(self, ("layers", "heads", "mlp_ratio"))
            _check_dropout(self.dropout)

    def __init__(self, params: Params, d_model: int, language_dim: int):
        super().__init__()
        _check_heads(params.heads, d_model)
        self.params, self.d_model, self.language_dim = params, d_model, language_dim
        self.keys = _InstructionKeys(language_dim, d_model)
        self.blocks = nn.ModuleList(_CrossBlock(d_model, params.heads, params.mlp_ratio, params.dropout)
                                    for _ in range(params.layers))

    def forward(self, fused: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = _check_inputs("cross_attention", fused, instruction, instruction_mask,
                             self.d_model, self.language_dim)
        keys, ignore = self.keys(instruction, mask)
        x = fused
        for block in self.blocks:
            x = block(x, keys, ignore)
        return x


@CONDITIONERS.register("prefix")
class PrefixConditioner(nn.Module):
    """The instruction becomes prefix_tokens tokens (learned queries attending to the instruction,
    so any instruction length maps to a fixed count), prepended to the fused tokens; `layers`
    transformer layers then mix both. Output (B, prefix_tokens + N, D), prefix first: heads that
    pool see the instruction directly, and heads that read a grid must skip the prefix.
    """

    @dataclass
    class Params:
        prefix_tokens: int = 4
        layers: int = 1
        heads: int = 4
        mlp_ratio: int = 2
        dropout: float = 0.0

        def __post_init__(self):
            _positive_ints(self, ("prefix_tokens", "layers", "heads", "mlp_ratio"))
            _check_dropout(self.dropout)

    def __init__(self, params: Params, d_model: int, language_dim: int):
        super().__init__()
        _check_heads(params.heads, d_model)
        self.params, self.d_model, self.language_dim = params, d_model, language_dim
        self.keys = _InstructionKeys(language_dim, d_model)
        self.queries = nn.Parameter(torch.randn(params.prefix_tokens, d_model) * 0.5)
        self.query_norm = nn.LayerNorm(d_model)
        self.resample = nn.MultiheadAttention(d_model, params.heads, batch_first=True)
        # Which segment a token belongs to: the sensor tokens may carry no positional code at all.
        self.segment = nn.Parameter(torch.zeros(2, d_model))
        layer = nn.TransformerEncoderLayer(d_model, params.heads, params.mlp_ratio * d_model,
                                           params.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.mix = nn.TransformerEncoder(layer, params.layers, enable_nested_tensor=False)

    def forward(self, fused: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = _check_inputs("prefix", fused, instruction, instruction_mask, self.d_model, self.language_dim)
        keys, ignore = self.keys(instruction, mask)
        q = self.query_norm(self.queries).unsqueeze(0).expand(fused.shape[0], -1, -1)
        prefix = q + self.resample(q, keys, keys, key_padding_mask=ignore, need_weights=False)[0]
        x = torch.cat([prefix + self.segment[0], fused + self.segment[1]], dim=1)
        return self.mix(x)


@CONDITIONERS.register("film")
class FiLMConditioner(nn.Module):
    """Per-channel scale and shift from the mean of the valid instruction tokens:
    out = fused * (1 + gamma) + beta. The cheapest conditioner; it cannot say *where* (no
    token-specific effect), only *what* to emphasise. Output (B, N, D); starts near identity."""

    @dataclass
    class Params:
        hidden: int = 128

        def __post_init__(self):
            _positive_ints(self, ("hidden",))

    def __init__(self, params: Params, d_model: int, language_dim: int):
        super().__init__()
        self.params, self.d_model, self.language_dim = params, d_model, language_dim
        self.net = nn.Sequential(nn.LayerNorm(language_dim), nn.Linear(language_dim, params.hidden),
                                 nn.GELU(), nn.Linear(params.hidden, 2 * d_model))
        with torch.no_grad():  # small, not zero: zero would also zero every upstream gradient
            self.net[-1].weight.normal_(0.0, 0.01)
            self.net[-1].bias.zero_()

    def forward(self, fused: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = _check_inputs("film", fused, instruction, instruction_mask, self.d_model, self.language_dim)
        w = mask.unsqueeze(-1).to(instruction.dtype)
        pooled = (instruction * w).sum(1) / w.sum(1).clamp(min=1.0)  # empty instruction -> zeros
        gamma, beta = self.net(pooled).chunk(2, dim=-1)
        return fused * (1 + gamma.unsqueeze(1)) + beta.unsqueeze(1)
