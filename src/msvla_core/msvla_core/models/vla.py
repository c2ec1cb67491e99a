"""The configurable multi-sensor VLA: one module, split across nodes by component.

Components (one safetensors file each): `encoder.<modality>` per sensor (run by that sensor's
encoder node), `fusion` (fusion node) and `policy` = language conditioning + action head (VLA
node). `forward` is the monolithic reference the node graph must reproduce.
"""
from __future__ import annotations

import torch
from torch import nn

from . import conditioning as _conditioning  # noqa: F401  (registers conditioners)
from . import encoders_lib as _encoders  # noqa: F401  (registers encoders)
from . import fusion_lib as _fusion  # noqa: F401  (registers fusion modules)
from . import heads_lib as _heads  # noqa: F401  (registers heads)
from . import multi_head as _multi_head  # noqa: F401  (registers multi_head)
from ..config import from_dict
from .registry import CONDITIONERS, ENCODERS, FUSIONS, HEADS, ModalityEncoder
from .vla_config import VLAConfig


class Policy(nn.Module):
    """Language conditioning followed by the action head."""

    def __init__(self, config: VLAConfig):
        super().__init__()
        lang = config.language
        self.conditioning = CONDITIONERS.build(lang.conditioning.type, lang.conditioning.params,
                                               "language.conditioning", d_model=config.d_model,
                                               language_dim=lang.dim)
        self.head = HEADS.build(config.head.type, config.head.params, "head", d_model=config.d_model)

    def forward(self, fused: torch.Tensor, instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if instruction.dim() == 2:  # a pooled sentence embedding is a one-token sequence
            instruction = instruction[:, None]
        if instruction_mask is None:
            instruction_mask = torch.ones(instruction.shape[:2], dtype=torch.bool, device=instruction.device)
        return self.head(self.conditioning(fused, instruction, instruction_mask))


class MultiSensorVLA(nn.Module):
    model_type = "multisensor_vla"

    def __init__(self, config: VLAConfig):
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleDict({
            name: ENCODERS.build(block.type, block.params, f"encoders.{name}", d_model=config.d_model)
            for name, block in config.encoders.items()})
        layout = {name: enc.grid for name, enc in self.encoders.items()}
        self.fusion = FUSIONS.build(config.fusion.type, config.fusion.params, "fusion",
                                    d_model=config.d_model, modalities=layout)
        self.policy = Policy(config)

    @classmethod
    def from_config_dict(cls, data: dict, where: str) -> "MultiSensorVLA":
        return cls(from_dict(VLAConfig, data, where=where))

    def component_names(self) -> list[str]:
        return [f"encoder.{name}" for name in self.encoders] + ["fusion", "policy"]

    def component(self, name: str) -> nn.Module:
        if name.startswith("encoder."):
            return self.encoders[name.split(".", 1)[1]]
        return getattr(self, name)

    def encoder(self, modality: str) -> ModalityEncoder:
        return self.encoders[modality]

    def forward(self, inputs: dict[str, dict[str, torch.Tensor]], instruction: torch.Tensor,
                instruction_mask: torch.Tensor | None = None,
                present: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        unknown = set(inputs) - set(self.encoders)
        if unknown:
            raise KeyError(f"inputs for modalities {sorted(unknown)} that the model has no encoder for")
        tokens = {name: self.encoders[name](**batch) for name, batch in inputs.items()}
        return self.policy(self.fusion(tokens, present), instruction, instruction_mask)
