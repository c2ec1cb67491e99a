"""A head made of several named heads sharing the conditioned tokens (e.g. control + trajectory)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .registry import HEADS


@HEADS.register("multi_head")
class MultiHead(nn.Module):
    """Outputs are prefixed with the head's name ("control.steering"); targets are given per head
    name; the total loss is the weighted sum of each head's total."""

    @dataclass
    class Params:
        heads: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {type, params}
        weights: dict[str, float] = field(default_factory=dict)  # name -> loss weight (default 1)

        def __post_init__(self):
            if not self.heads:
                raise ValueError("heads must name at least one head")
            for name, block in self.heads.items():
                if "." in name or not isinstance(block, dict) or "type" not in block:
                    raise ValueError(f"heads.{name}: needs a name without '.' and a mapping with 'type'")
                if set(block) - {"type", "params"}:
                    raise ValueError(f"heads.{name}: unknown keys {sorted(set(block) - {'type', 'params'})}")
            unknown = set(self.weights) - set(self.heads)
            if unknown:
                raise ValueError(f"weights: {sorted(unknown)} are not heads")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        self.params = params
        self.heads = nn.ModuleDict({
            name: HEADS.build(block["type"], block.get("params"), f"head.params.heads.{name}", d_model=d_model)
            for name, block in params.heads.items()})

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f"{name}.{key}": value for name, head in self.heads.items() for key, value in head(tokens).items()}

    def loss(self, outputs: dict[str, torch.Tensor], targets: dict[str, dict]) -> dict[str, torch.Tensor]:
        losses, total = {}, 0.0
        for name, head in self.heads.items():
            if name not in targets:
                continue  # a sample set may supervise only some heads
            own = {k.split(".", 1)[1]: v for k, v in outputs.items() if k.startswith(f"{name}.")}
            part = head.loss(own, targets[name])
            losses.update({f"{name}.{k}": v for k, v in part.items()})
            total = total + self.params.weights.get(name, 1.0) * part["total"]
        if not losses:
            raise KeyError(f"targets name none of the heads {list(self.heads)}")
        losses["total"] = total
        return losses
