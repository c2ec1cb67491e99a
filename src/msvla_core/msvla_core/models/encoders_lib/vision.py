"""RGB encoders: a small CNN ("rgb_cnn") and a SigLIP/CLIP vision tower ("rgb_hf_vision").

Both emit a row-major grid of tokens (B, h*w, d_model) so that fusion keeps the spatial layout.
The grid helpers here (positional embeddings, the CNN tokenizer, input checks) are shared with
the depth encoders in depth.py.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ...preprocessing import RGB_MEAN, RGB_STD, PreprocessingError, prepare_rgb
from ..config import GraspModelConfig, ImageInputConfig
from ..encoders import conv_block
from ..registry import ENCODERS, ModalityEncoder


def check_image_size(size: tuple[int, int], multiple: int, name: str = "image_size") -> None:
    h, w = size
    if h < 16 or w < 16 or h % multiple or w % multiple:
        raise ValueError(f"{name}={tuple(size)} must be (height, width), each at least 16 and a "
                         f"multiple of {multiple}")


def check_batch(name: str, x: Any, shape: tuple[int, ...]) -> None:
    """Reject a batched input that is not a float tensor (B, *shape), naming the key."""
    expected = "(B, " + ", ".join(str(s) for s in shape) + ")"
    if not torch.is_tensor(x):
        raise ValueError(f"input {name!r} must be a tensor {expected}, got {type(x).__name__}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"input {name!r} must have shape {expected}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"input {name!r} must be floating point, got {x.dtype}")


def sincos_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed (h*w, dim) embedding: a quarter of the channels each for sin/cos of row and column."""
    if dim % 4:
        raise ValueError(f"a sin/cos positional embedding needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = torch.exp(-math.log(10000.0) * torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                                torch.arange(w, dtype=torch.float32), indexing="ij")
    y = rows.reshape(-1, 1) * freqs
    x = cols.reshape(-1, 1) * freqs
    return torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], dim=1)


class GridPosition(nn.Module):
    """Adds a 2-D positional embedding to row-major grid tokens (B, h*w, dim)."""

    def __init__(self, kind: str, h: int, w: int, dim: int):
        super().__init__()
        if kind == "sincos":
            # Not saved in checkpoints: it is a function of the grid, rebuilt on load.
            self.register_buffer("table", sincos_2d(h, w, dim), persistent=False)
        elif kind == "learned":
            self.table = nn.Parameter(torch.randn(h * w, dim) * 0.02)
        else:
            raise ValueError(f"pos_embedding={kind!r} must be 'sincos' or 'learned'")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.table


@dataclass
class ConvTokenizerParams:
    """CNN grid tokenizer: one stride-2 block per entry of `channels`, then `extra_blocks` stride-1
    blocks; 3 entries give stride 8, 4 entries stride 16."""

    image_size: tuple[int, int] = (128, 128)  # (height, width) the input is resized to
    channels: tuple[int, ...] = (16, 32, 64)
    extra_blocks: int = 1
    pos_embedding: Literal["sincos", "learned"] = "sincos"

    @property
    def stride(self) -> int:
        return 2 ** len(self.channels)

    def __post_init__(self):
        if len(self.channels) not in (3, 4) or any(c <= 0 for c in self.channels):
            raise ValueError(f"channels={self.channels} must be 3 or 4 positive widths "
                             "(stride 8 or 16)")
        if self.extra_blocks < 0:
            raise ValueError(f"extra_blocks={self.extra_blocks} must be >= 0")
        check_image_size(self.image_size, self.stride)


class ConvTokenizer(nn.Module):
    """(B, in_channels, H, W) -> LayerNorm-ed grid tokens (B, h*w, d_model) plus positions."""

    def __init__(self, in_channels: int, params: ConvTokenizerParams, d_model: int):
        super().__init__()
        layers, cin = [], in_channels
        for cout in params.channels:
            layers.append(conv_block(cin, cout, 2))
            cin = cout
        layers += [conv_block(cin, cin, 1) for _ in range(params.extra_blocks)]
        self.backbone = nn.Sequential(*layers)
        self.proj = nn.Conv2d(cin, d_model, 1)
        self.norm = nn.LayerNorm(d_model)
        self.grid = (params.image_size[0] // params.stride, params.image_size[1] // params.stride)
        self.pos = GridPosition(params.pos_embedding, *self.grid, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.backbone(x)).flatten(2).transpose(1, 2)
        return self.pos(self.norm(tokens))


def check_d_model(d_model: int, pos_embedding: str) -> None:
    if d_model <= 0 or (pos_embedding == "sincos" and d_model % 4):
        raise ValueError(f"d_model={d_model} must be positive (and divisible by 4 with "
                         "pos_embedding='sincos')")


def rgb_input_config(size: tuple[int, int]) -> GraspModelConfig:
    """prepare_rgb reads its output size from a model config; build one for `size` (H, W)."""
    try:
        return GraspModelConfig(image=ImageInputConfig(width=size[1], height=size[0]))
    except ValueError as exc:
        raise ValueError(f"image_size={tuple(size)}: {exc}") from None


def prepare_rgb_array(rgb: Any, config: GraspModelConfig) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise PreprocessingError(f"RGB image must be a numpy (H, W, 3) uint8 array, got "
                                 f"{type(rgb).__name__}")
    return prepare_rgb(rgb, config)


@ENCODERS.register("rgb_cnn")
class RgbCnnEncoder(ModalityEncoder):
    """Small CNN over an ImageNet-normalised image -> grid tokens.

    preprocess: (H, W, 3) uint8 RGB -> {"image": (3, *image_size) float32}.
    """

    modality = "rgb"

    @dataclass
    class Params(ConvTokenizerParams):
        pass

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        check_d_model(d_model, params.pos_embedding)
        self._input_config = rgb_input_config(params.image_size)
        self.tokenizer = ConvTokenizer(3, params, d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return self.tokenizer.grid

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        return {"image": prepare_rgb_array(raw, self._input_config)}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_batch("image", image, (3, *self.params.image_size))
        return self.tokenizer(image)


# Per family: normalisation the tower was trained with, and whether token 0 is a CLS token.
_FAMILY_STATS = {
    "siglip": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), False),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711), True),
}
# Used when neither `path` nor `config` is given: small enough for CPU tests and smoke runs.
TINY_TOWER = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 2, "patch_size": 16, "image_size": 128}


def _tower_classes(family: str):
    # Imported lazily: transformers takes seconds to import and most models never need it.
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel
    return {"siglip": (SiglipVisionConfig, SiglipVisionModel),
            "clip": (CLIPVisionConfig, CLIPVisionModel)}[family]


def build_tower(params: Any) -> nn.Module:
    config_cls, model_cls = _tower_classes(params.family)
    extra = {"vision_use_head": False} if params.family == "siglip" else {}  # pooling head unused
    if params.path:
        if not os.path.isdir(params.path):
            raise FileNotFoundError(f"rgb_hf_vision: model directory {params.path!r} does not exist")
        return model_cls.from_pretrained(params.path, local_files_only=True, dtype=torch.float32,
                                         **extra)
    settings = dict(params.config or TINY_TOWER)
    known = set(config_cls().to_dict())
    unknown = sorted(set(settings) - known)
    if unknown:
        # PretrainedConfig silently keeps unknown keys, which would hide a typo.
        raise ValueError(f"config: unknown {config_cls.__name__} key(s) {unknown}")
    return model_cls(config_cls(**{**settings, **extra}))


def tower_stats(params: Any) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation of the tower: the checkpoint's preprocessor_config.json, else the family's."""
    mean, std, _ = _FAMILY_STATS[params.family]
    file = os.path.join(params.path, "preprocessor_config.json") if params.path else ""
    if file and os.path.isfile(file):
        with open(file, encoding="utf-8") as f:
            saved = json.load(f)
        mean, std = saved.get("image_mean", mean), saved.get("image_std", std)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


@ENCODERS.register("rgb_hf_vision")
class HfVisionEncoder(ModalityEncoder):
    """SigLIP or CLIP vision tower (transformers) -> patch tokens projected to d_model.

    preprocess: (H, W, 3) uint8 RGB -> {"image": (3, H', W') float32} normalised with the tower's
    statistics; (H', W') is `image_size`, or the tower's own size when image_size is None (other
    sizes interpolate the tower's position embeddings). CLIP's CLS token is dropped.
    """

    modality = "rgb"

    @dataclass
    class Params:
        family: Literal["siglip", "clip"] = "siglip"
        path: str = ""  # local checkpoint directory; empty -> random init from `config`
        config: dict[str, Any] = field(default_factory=dict)  # empty -> TINY_TOWER
        freeze: bool = False  # keep the tower's weights fixed; only the projection trains
        image_size: tuple[int, int] | None = None  # (height, width); None -> the tower's size

        def __post_init__(self):
            if self.path and self.config:
                raise ValueError("config: only used to build a random tower when path is empty")
            if self.image_size is not None and min(self.image_size) < 16:
                raise ValueError(f"image_size={self.image_size} must be at least 16 x 16")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        check_d_model(d_model, "learned")
        self.tower = build_tower(params)
        cfg = self.tower.config
        size = tuple(params.image_size or (cfg.image_size, cfg.image_size))
        check_image_size(size, cfg.patch_size)
        self._input_config = rgb_input_config(size)
        self._size, self._grid = size, (size[0] // cfg.patch_size, size[1] // cfg.patch_size)
        self._interpolate = size != (cfg.image_size, cfg.image_size)
        self._has_cls = _FAMILY_STATS[params.family][2]
        # prepare_rgb yields ImageNet statistics; this affine map converts to the tower's own.
        mean, std = tower_stats(params)
        self._scale = (RGB_STD / std).reshape(3, 1, 1)
        self._offset = ((RGB_MEAN - mean) / std).reshape(3, 1, 1)
        self.proj = nn.Sequential(nn.LayerNorm(cfg.hidden_size), nn.Linear(cfg.hidden_size, d_model))
        if params.freeze:
            self.tower.requires_grad_(False)
            self.tower.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.params.freeze:
            self.tower.eval()  # a frozen tower must not switch to dropout behaviour
        return self

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        x = prepare_rgb_array(raw, self._input_config)
        return {"image": (x * self._scale + self._offset).astype(np.float32)}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_batch("image", image, (3, *self._size))
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.params.freeze):
            hidden = self.tower(pixel_values=image,
                                interpolate_pos_encoding=self._interpolate).last_hidden_state
        if self._has_cls:
            hidden = hidden[:, 1:]
        return self.proj(hidden)
