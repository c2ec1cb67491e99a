"""Token fusion modules of the configurable multi-sensor VLA (registered in FUSIONS on import).

Types: early_concat, late_average, late_gated, late_attention, cross_modal_transformer, bev,
uncertainty_weighted. All follow TokenFusion (base.py): `cls(params, d_model, modalities)` and
`forward(tokens, present=None) -> (B, N, D)`.
"""
from . import bev, early, late, transformer, uncertainty  # noqa: F401  (register the types)
from .base import Prepared, TokenFusion

__all__ = ["Prepared", "TokenFusion"]
