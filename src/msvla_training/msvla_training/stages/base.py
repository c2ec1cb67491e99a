"""What every training stage is: an nn.Module around the model that computes one loss.

A stage owns its training-only modules (projection heads, decoders) as submodules next to the
model, so data-parallel wrapping, optimisation and resumable state cover them, while the final
checkpoint (save_pretrained of the model) leaves them out. `components` names the model parts
the stage's loss trains; the runner freezes the rest for the stage.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn


@dataclass
class StageRandom:
    """Random streams of a step: `shared` is identical on every rank (batch order, per-step
    choices that must agree across ranks); `local` differs per rank (augmentation noise)."""

    shared: torch.Generator
    local: torch.Generator


def check_positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive finite number, got {value}")


def check_fraction(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def check_non_negative(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass
class NoParams:
    pass


class Stage(nn.Module):
    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    components: ClassVar[tuple[str, ...]] = ()  # model components this stage's loss trains
    inputs: ClassVar[tuple[str, ...]] = ()  # data keys a batch must carry
    needs_instruction: ClassVar[bool] = False

    def __init__(self, model: nn.Module, params):
        super().__init__()
        self.model = model
        self.params = params

    def forward(self, batch: dict, rng: StageRandom) -> tuple[torch.Tensor, dict[str, float]]:
        """(loss, named float parts for logging) of one batch (this rank's shard)."""
        raise NotImplementedError

    def uses_every_parameter(self) -> bool:
        """True when every step's loss depends on all trainable parameters (lets data-parallel
        training skip the search for unused ones)."""
        return False

    def extra_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of the training-only modules (not part of the saved model)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("model.")}

    def load_extra_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        own = self.extra_state_dict()
        if set(own) != set(state):
            raise ValueError(f"stage {self.name}: saved training-only weights {sorted(state)} do not match "
                             f"{sorted(own)}")
        for key, value in state.items():
            own[key].copy_(value)

    def close(self) -> None:
        """Release hooks on the model at the end of the stage."""
