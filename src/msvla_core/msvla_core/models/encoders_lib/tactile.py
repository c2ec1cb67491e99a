"""Tactile encoders (modality "tactile"); every variant preprocesses to {"tactile": ...}, so a
config can swap the sensor model without touching the data pipeline.

- tactile_grid: taxel pressure grid(s) in kPa -> small CNN -> grid tokens.
- tactile_biotac: BioTac-style feature vector -> standardise -> MLP -> `tokens` tokens.
- tactile_gelsight: GelSight RGB image -> small CNN -> grid tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from ..registry import ENCODERS, ModalityEncoder


def _positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _positive_pair(name: str, pair: tuple[int, int]) -> None:
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{name} must be two integers >= 1, got {pair!r}")


def _real_array(raw, name: str) -> np.ndarray:
    data = np.asarray(raw)
    if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
        raise ValueError(f"{name}: expected real numbers, got dtype {data.dtype}")
    data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return data


def _check_d_model(d_model: int) -> None:
    if d_model < 1:
        raise ValueError(f"d_model must be >= 1, got {d_model}")


def _check_input(x: torch.Tensor, tail: tuple[int, ...]) -> None:
    if x.ndim != len(tail) + 1 or tuple(x.shape[1:]) != tail:
        raise ValueError(f"tactile: expected shape (B, {', '.join(map(str, tail))}), got "
                         f"{tuple(x.shape)}")


def _halved(size: int, times: int) -> int:
    """Output length of `times` stride-2, padding-1, kernel-3 convs."""
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


class _GridCnn(nn.Module):
    """Stem conv, then `downsample` stride-2 convs, then a 1x1 projection to d_model and a
    learned per-cell position (conv features alone barely know where on the pad they are)."""

    def __init__(self, cin: int, channels: int, downsample: int, size: tuple[int, int],
                 d_model: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(cin, channels, 3, padding=1), nn.GELU()]
        for _ in range(downsample):
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.GELU()]
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(channels, d_model, 1)
        self.grid = (_halved(size[0], downsample), _halved(size[1], downsample))
        self.position = nn.Parameter(torch.randn(self.grid[0] * self.grid[1], d_model) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.proj(self.convs(x))  # (B, D, h, w)
        return features.flatten(2).transpose(1, 2) + self.position


@ENCODERS.register("tactile_grid")
class TactileGridEncoder(ModalityEncoder):
    """Pressure grid raw (H, W) kPa, or (sensors, H, W) for several pads (e.g. both fingers)
    -> {"tactile": (sensors, H, W) in units of pressure_scale_kpa} -> row-major grid tokens
    (ceil(H/4) x ceil(W/4) cells, pads stacked as channels)."""

    modality = "tactile"

    @dataclass
    class Params:
        grid_size: tuple[int, int] = (16, 16)  # taxel rows, columns
        sensors: int = 1
        pressure_scale_kpa: float = 100.0
        channels: int = 32

        def __post_init__(self):
            _positive_pair("grid_size", self.grid_size)
            _positive(self, "sensors", "pressure_scale_kpa", "channels")

    def __init__(self, params: Params, d_model: int):
        _check_d_model(d_model)
        super().__init__(params, d_model)
        self.net = _GridCnn(params.sensors, params.channels, 2, params.grid_size, d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return self.net.grid

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        data = _real_array(raw, "tactile")
        expected = (p.sensors, *p.grid_size)
        if data.ndim == 2 and p.sensors == 1:
            data = data[None]
        if data.shape != expected:
            form = f"{tuple(p.grid_size)} or {expected}" if p.sensors == 1 else f"{expected}"
            raise ValueError(f"tactile: expected a pressure grid of shape {form}, got "
                             f"{np.shape(raw)}")
        return {"tactile": data / np.float32(p.pressure_scale_kpa)}

    def forward(self, tactile: torch.Tensor) -> torch.Tensor:
        _check_input(tactile, (self.params.sensors, *self.params.grid_size))
        return self.net(tactile)


@ENCODERS.register("tactile_biotac")
class TactileBiotacEncoder(ModalityEncoder):
    """Feature vector raw (dim,) - by default 19 electrode impedances + PDC + TAC; concatenate
    several fingers and raise `dim` for more - standardised with per-feature mean/std
    -> {"tactile": (dim,)} -> MLP -> `tokens` tokens."""

    modality = "tactile"

    @dataclass
    class Params:
        dim: int = 21
        mean: list[float] | None = None  # per feature; None = zeros
        std: list[float] | None = None  # per feature, > 0; None = ones
        hidden: int = 64
        tokens: int = 2

        def __post_init__(self):
            _positive(self, "dim", "hidden", "tokens")
            if self.mean is None:
                self.mean = [0.0] * self.dim
            if self.std is None:
                self.std = [1.0] * self.dim
            for name in ("mean", "std"):
                values = getattr(self, name)
                if len(values) != self.dim:
                    raise ValueError(f"{name} must have dim={self.dim} entries, got "
                                     f"{len(values)}")
                if not all(math.isfinite(v) for v in values):
                    raise ValueError(f"{name} must be finite")
            if min(self.std) <= 0:
                raise ValueError(f"std entries must be > 0, got min {min(self.std)}")

    def __init__(self, params: Params, d_model: int):
        _check_d_model(d_model)
        super().__init__(params, d_model)
        self._mean = np.asarray(params.mean, dtype=np.float32)
        self._std = np.asarray(params.std, dtype=np.float32)
        self.net = nn.Sequential(
            nn.Linear(params.dim, params.hidden), nn.GELU(),
            nn.Linear(params.hidden, params.hidden), nn.GELU(),
            nn.Linear(params.hidden, params.tokens * d_model))

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        data = _real_array(raw, "tactile")
        if data.shape != (self.params.dim,):
            raise ValueError(f"tactile: expected a vector of shape ({self.params.dim},), got "
                             f"{data.shape}")
        return {"tactile": (data - self._mean) / self._std}

    def forward(self, tactile: torch.Tensor) -> torch.Tensor:
        _check_input(tactile, (self.params.dim,))
        return self.net(tactile).view(tactile.shape[0], self.params.tokens, self.d_model)


@ENCODERS.register("tactile_gelsight")
class TactileGelsightEncoder(ModalityEncoder):
    """GelSight RGB raw uint8 (H, W, 3) -> {"tactile": (3, h, w)} resized to image_size and
    mapped to about [-2, 2] -> CNN (4 stride-2 stages) -> row-major grid tokens."""

    modality = "tactile"

    @dataclass
    class Params:
        image_size: tuple[int, int] = (48, 64)  # height, width (4:3 like the sensor)
        channels: int = 32

        def __post_init__(self):
            _positive_pair("image_size", self.image_size)
            _positive(self, "channels")

    def __init__(self, params: Params, d_model: int):
        _check_d_model(d_model)
        super().__init__(params, d_model)
        self.net = _GridCnn(3, params.channels, 4, params.image_size, d_model)

    @property
    def grid(self) -> tuple[int, int]:
        return self.net.grid

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        image = np.asarray(raw)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape) < 1:
            raise ValueError(f"tactile: expected a GelSight image (H, W, 3) uint8, got "
                             f"{image.shape} {image.dtype}")
        h, w = self.params.image_size
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        x = (image.astype(np.float32) / 255.0 - 0.5) / 0.25
        return {"tactile": np.ascontiguousarray(x.transpose(2, 0, 1))}

    def forward(self, tactile: torch.Tensor) -> torch.Tensor:
        _check_input(tactile, (3, *self.params.image_size))
        return self.net(tactile)
