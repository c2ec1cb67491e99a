"""Configuration of the configurable multi-sensor VLA (dataclasses, loaded from YAML)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class BlockConfig:
    """One registered block: its `type` name and its `params` (validated by the block's Params)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class LanguageConfig:
    """Instruction encoder and how it conditions the fused tokens.

    backbone "minilm": the packaged all-MiniLM-L6-v2 (or `path`), one pooled 384-d token.
    backbone "causal_lm": a Qwen2/SmolLM-class model from the local directory `path` (token states).
    """

    backbone: Literal["minilm", "causal_lm"] = "minilm"
    path: str = ""
    dim: int = 384
    conditioning: BlockConfig = field(default_factory=lambda: BlockConfig("cross_attention"))

    def __post_init__(self):
        if self.dim <= 0:
            raise ValueError(f"dim must be positive, got {self.dim}")
        if self.backbone == "causal_lm" and not self.path:
            raise ValueError("backbone causal_lm needs `path`, a local model directory")


@dataclass
class VLAConfig:
    """Encoders per modality -> fusion -> language conditioning -> action head."""

    name: str
    encoders: dict[str, BlockConfig]
    fusion: BlockConfig
    head: BlockConfig
    language: LanguageConfig = field(default_factory=LanguageConfig)
    d_model: int = 128

    def __post_init__(self):
        if not self.encoders:
            raise ValueError("encoders must name at least one modality")
        if self.d_model <= 0 or self.d_model % 8:
            raise ValueError(f"d_model={self.d_model} must be a positive multiple of 8")
        for name in self.encoders:
            if not name.isidentifier():
                raise ValueError(f"encoders: modality name {name!r} must be an identifier (it names topics)")

    def to_dict(self) -> dict:
        return asdict(self)
