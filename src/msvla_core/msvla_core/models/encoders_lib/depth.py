"""Depth encoders: a small CNN ("depth_cnn") and a small ViT ("depth_vit") -> grid tokens.

Both share the preprocessing: range-normalised depth with holes filled, plus the validity mask,
so the network can tell measured surfaces from guessed ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from ...preprocessing import PreprocessingError, _normalised_fill
from ..registry import ENCODERS, ModalityEncoder
from .vision import (ConvTokenizer, ConvTokenizerParams, GridPosition, check_batch, check_d_model,
                     check_image_size)


@dataclass
class DepthInputParams:
    min_m: float = 0.1  # returns outside [min_m, max_m] metres count as holes
    max_m: float = 3.0
    fill_kernel: int = 7  # odd window (pixels) of the hole-filling average
    max_invalid_fraction: float = 0.9  # refuse frames with more holes than this

    def __post_init__(self):
        if not 0.0 < self.min_m < self.max_m:
            raise ValueError(f"min_m={self.min_m}, max_m={self.max_m}: need 0 < min_m < max_m")
        if self.fill_kernel < 1 or self.fill_kernel % 2 == 0:
            raise ValueError(f"fill_kernel={self.fill_kernel} must be a positive odd number")
        if not 0.0 <= self.max_invalid_fraction <= 1.0:
            raise ValueError(f"max_invalid_fraction={self.max_invalid_fraction} must be in [0, 1]")


def prepare_depth_input(depth_m: Any, size: tuple[int, int], p: DepthInputParams) -> np.ndarray:
    """(H, W) float depth in metres (NaN, 0, inf and out-of-range = hole) -> (2, *size) float32:
    normalised depth in [0, 1] with holes filled from valid neighbours, and the validity fraction.

    Produces the same encoder input as msvla_core.preprocessing.prepare_depth, without needing
    the camera model (the geometry channels are the spatial grasp model's concern).
    """
    if isinstance(depth_m, dict):  # the depth encoder node passes {"depth", "camera", "camera_to_base"}
        depth_m = depth_m["depth"]
    if not isinstance(depth_m, np.ndarray) or depth_m.ndim != 2:
        shape = getattr(depth_m, "shape", type(depth_m).__name__)
        raise PreprocessingError(f"depth image must be a 2-D numpy array (H, W), got {shape}")
    if not np.issubdtype(depth_m.dtype, np.floating):
        # Integer depth is usually millimetres (16UC1); reading it as metres would be silently wrong.
        raise PreprocessingError(f"depth image must be float metres, got dtype {depth_m.dtype}")
    lo, hi = p.min_m, p.max_m
    depth_m = depth_m.astype(np.float32, copy=False)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth_m) & (depth_m >= lo) & (depth_m <= hi)
    invalid_fraction = 1.0 - float(valid.mean())
    if not valid.any() or invalid_fraction > p.max_invalid_fraction:
        raise PreprocessingError(
            f"depth image: {invalid_fraction:.0%} of pixels are NaN, inf or outside [{lo}, {hi}] m "
            f"(limit max_invalid_fraction={p.max_invalid_fraction:.0%})")
    filled = _normalised_fill(np.where(valid, depth_m, 0.0), valid, kernel=p.fill_kernel)
    # Holes wider than the window get the far limit: "nothing measured" reads as "far away".
    filled[~valid & (filled <= 0)] = hi
    norm = (np.clip(filled, lo, hi) - lo) / (hi - lo)
    dsize = (size[1], size[0])
    return np.stack([cv2.resize(norm, dsize, interpolation=cv2.INTER_AREA),
                     cv2.resize(valid.astype(np.float32), dsize, interpolation=cv2.INTER_AREA),
                     ]).astype(np.float32)


@ENCODERS.register("depth_cnn")
class DepthCnnEncoder(ModalityEncoder):
    """Small CNN over (normalised depth, validity) -> grid tokens.

    preprocess: (H, W) float32 metres -> {"depth": (2, *image_size) float32}.
    """

    modality = "depth"

    @dataclass
    class Params(ConvTokenizerParams, DepthInputParams):
        def __post_init__(self):
            ConvTokenizerParams.__post_init__(self)
            DepthInputParams.__post_init__(self)

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        check_d_model(d_model, params.pos_embedding)
        self.tokenizer = ConvTokenizer(2, params, d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return self.tokenizer.grid

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        return {"depth": prepare_depth_input(raw, self.params.image_size, self.params)}

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        check_batch("depth", depth, (2, *self.params.image_size))
        return self.tokenizer(depth)


@ENCODERS.register("depth_vit")
class DepthVitEncoder(ModalityEncoder):
    """Small ViT: non-overlapping patches -> pre-norm transformer layers -> patch tokens.

    preprocess: (H, W) float32 metres -> {"depth": (2, *image_size) float32}.
    """

    modality = "depth"

    @dataclass
    class Params(DepthInputParams):
        image_size: tuple[int, int] = (128, 128)  # (height, width)
        patch_size: int = 16
        width: int = 64  # transformer width; tokens are projected to d_model afterwards
        layers: int = 2
        heads: int = 4
        mlp_ratio: int = 2
        dropout: float = 0.0
        pos_embedding: Literal["sincos", "learned"] = "sincos"

        def __post_init__(self):
            DepthInputParams.__post_init__(self)
            if self.patch_size < 2:
                raise ValueError(f"patch_size={self.patch_size} must be >= 2")
            check_image_size(self.image_size, self.patch_size)
            for name in ("width", "layers", "heads", "mlp_ratio"):
                if getattr(self, name) <= 0:
                    raise ValueError(f"{name}={getattr(self, name)} must be positive")
            if self.width % self.heads:
                raise ValueError(f"width={self.width} must be divisible by heads={self.heads}")
            if self.pos_embedding == "sincos" and self.width % 4:
                raise ValueError(f"width={self.width} must be divisible by 4 with sincos positions")
            if not 0.0 <= self.dropout < 1.0:
                raise ValueError(f"dropout={self.dropout} must be in [0, 1)")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        check_d_model(d_model, "learned")
        p = params
        self._grid = (p.image_size[0] // p.patch_size, p.image_size[1] // p.patch_size)
        self.patch_embed = nn.Conv2d(2, p.width, p.patch_size, stride=p.patch_size)
        self.pos = GridPosition(p.pos_embedding, *self._grid, p.width)
        layer = nn.TransformerEncoderLayer(p.width, p.heads, p.width * p.mlp_ratio, p.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, p.layers, norm=nn.LayerNorm(p.width),
                                            enable_nested_tensor=False)
        self.proj = nn.Linear(p.width, d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        return {"depth": prepare_depth_input(raw, self.params.image_size, self.params)}

    def forward(self, depth: torch.Tensor) -> torch.Tensor:
        check_batch("depth", depth, (2, *self.params.image_size))
        tokens = self.patch_embed(depth).flatten(2).transpose(1, 2)
        return self.proj(self.blocks(self.pos(tokens)))
