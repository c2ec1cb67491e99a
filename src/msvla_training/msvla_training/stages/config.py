"""One stage's entry in the msvla-train config: its budget, optimiser settings and parameters."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from msvla_core.models.grasp_vla import COMPONENTS

from . import parse_params, stage_class


@dataclass
class StageConfig:
    name: str  # one of msvla_training.stages.STAGES
    steps: int
    lr: float
    batch_size: int = 32  # global batch: split across ranks under torchrun
    weight_decay: float = 1e-4
    warmup_steps: int | None = None  # None: 2% of the steps
    min_lr_ratio: float = 0.05  # cosine decay ends at this fraction of lr
    grad_clip: float = 5.0
    freeze: list[str] = field(default_factory=list)  # model components kept fixed in this stage
    params: dict[str, Any] = field(default_factory=dict)  # the stage's own parameters
    parsed_params: Any = field(init=False, repr=False, default=None)

    def __post_init__(self):
        stage_class(self.name)
        for key in ("steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("lr", "grad_clip"):
            if not (getattr(self, key) > 0 and math.isfinite(getattr(self, key))):
                raise ValueError(f"{key} must be a positive finite number, got {getattr(self, key)}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        unknown = sorted(set(self.freeze) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"freeze names unknown components {unknown}; expected some of {list(COMPONENTS)}")
        self.parsed_params = parse_params(self.name, self.params, "params")
