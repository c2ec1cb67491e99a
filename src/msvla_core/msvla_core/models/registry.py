"""Building blocks of the configurable multi-sensor VLA family, and their registries.

Every block is named in a model config by `type` plus a `params` mapping; the registry turns the
mapping into the block's own `Params` dataclass (validated by msvla_core.config.from_dict, so a
typo names the key) and builds the module.

Shared conventions (all blocks follow them):
- Token width: every encoder emits tokens of width `d_model` (from the model config).
- Encoders: `ModalityEncoder.preprocess(raw) -> dict[str, np.ndarray]` turns one raw sensor sample
  (numpy arrays as msvla_core.data produces them) into float32 arrays without a batch axis; the
  encoder nodes and the trainers call it, so both see identical inputs. `forward(**batched)`
  takes the same keys with a leading batch axis as tensors and returns tokens (B, N, d_model).
  `grid` is (H, W) when the tokens are a row-major H x W grid (e.g. a BEV map), else None.
- Fusion: `forward(tokens: dict[modality, (B, N_m, D)], present: dict[modality, (B,) bool])`
  returns (B, N, D); modalities absent from `tokens` or with present=False use the learned
  missing-modality embedding. Modality dropout is applied in training mode only.
- Conditioning: `forward(fused (B, N, D), instruction (B, L, D_lang), instruction_mask (B, L))`
  returns (B, N', D).
- Heads: `forward(tokens (B, N, D)) -> dict[str, Tensor]` of named outputs (units in each head's
  docstring); `loss(outputs, targets) -> dict[str, Tensor]` with a "total" entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, from_dict


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, name: str):
        def add(cls):
            if name in self._classes:
                raise ValueError(f"{self.kind} type {name!r} registered twice")
            cls.type_name = name
            self._classes[name] = cls
            return cls
        return add

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type:
        if name not in self._classes:
            raise ConfigError(f"unknown {self.kind} type {name!r}; known: {', '.join(self.names())}")
        return self._classes[name]

    def params(self, name: str, params: dict | None, where: str):
        cls = self.get(name)
        return from_dict(cls.Params, params or {}, where=f"{where}.params")

    def build(self, name: str, params: dict | None, where: str, **kwargs) -> nn.Module:
        return self.get(name)(self.params(name, params, where), **kwargs)


ENCODERS = Registry("encoder")
FUSIONS = Registry("fusion")
CONDITIONERS = Registry("conditioning")
HEADS = Registry("head")


class ModalityEncoder(nn.Module):
    """Base of the per-sensor encoders (see the module docstring for the contract)."""

    modality: ClassVar[str] = ""
    type_name: ClassVar[str] = ""

    @dataclass
    class Params:
        pass

    def __init__(self, params: Any, d_model: int):
        super().__init__()
        self.params = params
        self.d_model = d_model

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @property
    def grid(self) -> tuple[int, int] | None:
        return None

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def batch_inputs(samples: list[dict[str, np.ndarray]], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Stack preprocessed samples (same keys, same shapes) into batched tensors."""
    keys = samples[0].keys()
    return {k: torch.from_numpy(np.stack([s[k] for s in samples])).to(device) for k in keys}
