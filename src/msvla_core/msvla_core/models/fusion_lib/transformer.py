"""Cross-modal transformer: self-attention over all modalities' tokens together."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import FUSIONS
from .base import TokenFusion, require_fraction, require_int


@FUSIONS.register("cross_modal_transformer")
class CrossModalTransformerFusion(TokenFusion):
    """Transformer encoder over the concatenation of every modality's tokens.

    Tokens get a learned modality embedding and (optionally) a learned positional embedding per
    modality. A missing modality keeps its token slots, but the key padding mask hides all of
    them except the first missing token, so the others learn "sensor X is absent" from one token
    instead of attending to a full sequence of placeholders.

    `max_tokens_per_modality` bounds the attention cost: longer modalities are average-pooled
    first (1-D over tokens; grids 2-D, keeping the aspect ratio, to gh x gw <= the bound).
    Output (B, N, D) with N = sum of the (pooled) per-modality counts, modalities in `names` order.
    Positional embeddings need a known count; a variable (None) modality has them only when
    `max_tokens_per_modality` bounds it.
    """

    @dataclass
    class Params(TokenFusion.Params):
        layers: int = 2
        heads: int = 4
        ff_mult: int = 2  # feed-forward width = ff_mult * d_model
        dropout: float = 0.0
        positional: bool = True
        max_tokens_per_modality: int | None = 32

        def __post_init__(self):
            super().__post_init__()
            require_int("layers", self.layers, 1)
            require_int("heads", self.heads, 1)
            require_int("ff_mult", self.ff_mult, 1)
            require_fraction("dropout", self.dropout)
            if self.max_tokens_per_modality is not None:
                require_int("max_tokens_per_modality", self.max_tokens_per_modality, 1)

    def __init__(self, params: Params, d_model: int, modalities: dict):
        super().__init__(params, d_model, modalities)
        if d_model % params.heads:
            raise ValueError(f"heads={params.heads} must divide d_model={d_model}")
        self.modality_embed = nn.Parameter(torch.randn(len(self.names), d_model) * 0.02)
        self.pooled_grid = {name: self._pooled_grid(name) for name in self.names}
        self.positions = nn.ParameterDict()
        if params.positional:
            for name in self.names:
                count = self._pooled_count(name)
                if count is not None:
                    self.positions[name] = nn.Parameter(torch.randn(count, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, params.heads, params.ff_mult * d_model,
                                           params.dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        # Nested tensors would zero the hidden slots in eval only; keep train and eval alike.
        self.encoder = nn.TransformerEncoder(layer, params.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def _pooled_grid(self, name: str) -> tuple[int, int] | None:
        grid, cap = self.grid_of(name), self.params.max_tokens_per_modality
        if grid is None or cap is None or grid[0] * grid[1] <= cap:
            return None
        scale = math.sqrt(cap / (grid[0] * grid[1]))
        gh, gw = max(1, int(grid[0] * scale)), max(1, int(grid[1] * scale))
        while gh * gw > cap:  # rounding of a very elongated grid
            gh, gw = (gh - 1, gw) if gh >= gw else (gh, gw - 1)
        return gh, gw

    def _pooled_count(self, name: str) -> int | None:
        cap, count = self.params.max_tokens_per_modality, self.token_count(name)
        if self.pooled_grid[name] is not None:
            return self.pooled_grid[name][0] * self.pooled_grid[name][1]
        if count is None:
            return cap
        return count if cap is None else min(count, cap)

    def _pool(self, name: str, x: torch.Tensor) -> torch.Tensor:
        target = self.pooled_grid[name]
        if target is not None:
            h, w = self.grid_of(name)
            grid = x.transpose(1, 2).reshape(x.shape[0], self.d_model, h, w)
            return F.adaptive_avg_pool2d(grid, target).flatten(2).transpose(1, 2)
        cap = self.params.max_tokens_per_modality
        if cap is not None and x.shape[1] > cap:
            return F.adaptive_avg_pool1d(x.transpose(1, 2), cap).transpose(1, 2)
        return x

    def forward(self, tokens: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        prep = self.prepare(tokens, present)
        parts, visible = [], []
        for i, name in enumerate(self.names):
            x = self._pool(name, prep.tokens[name]) + self.modality_embed[i]
            n = x.shape[1]
            if name in self.positions:
                x = x + self.positions[name][:n]
            parts.append(x)
            first = torch.arange(n, device=x.device) == 0
            visible.append(prep.presence[:, i, None] | first[None])
        hidden = self.encoder(torch.cat(parts, 1), src_key_padding_mask=~torch.cat(visible, 1))
        return self.norm(hidden)
