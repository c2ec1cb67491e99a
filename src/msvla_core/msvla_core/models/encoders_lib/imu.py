"""IMU window encoders (modality "imu"): LSTM, transformer, causal TCN and flat MLP variants.

Raw sample: float array (T, 6) [ax, ay, az in m/s^2 with gravity, wx, wy, wz in rad/s], oldest
first, at the IMU rate; or (T, 7) with a trailing time offset in seconds relative to the window
end (<= 0, non-decreasing), which is resampled onto a uniform grid of `sample_period_s`.
Preprocessed: {"imu": (window, 6) scaled accel/gyro, "mask": (window,) 1 = real data}.
The networks see the mask as a seventh input channel, so left padding is never mistaken for a
robot standing still.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..registry import ENCODERS, ModalityEncoder

IMU_CHANNELS = 6


def _positive(params, *names: str) -> None:
    for name in names:
        value = getattr(params, name)
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


@dataclass
class ImuParams:
    window: int = 20  # samples per window (the most recent ones are kept)
    accel_scale: float = 9.81  # m/s^2 mapped to 1.0, so gravity reads as about 1
    gyro_scale: float = 3.0  # rad/s mapped to 1.0
    sample_period_s: float = 0.01  # grid spacing when raw samples carry time offsets
    hidden: int = 32  # internal width of the network

    def __post_init__(self):
        _positive(self, "window", "accel_scale", "gyro_scale", "sample_period_s", "hidden")


class ImuEncoderBase(ModalityEncoder):
    """Shared preprocessing and input checks; subclasses implement `encode(x (B, T, 7), mask)`."""

    modality = "imu"
    Params = ImuParams

    def __init__(self, params: ImuParams, d_model: int):
        if d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {d_model}")
        super().__init__(params, d_model)

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        data = np.asarray(raw)
        if data.ndim != 2 or data.shape[1] not in (6, 7) or data.shape[0] < 1:
            raise ValueError(f"imu: expected a (T, 6) or (T, 7) array with T >= 1, got shape "
                             f"{data.shape}")
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise ValueError(f"imu: expected real numbers, got dtype {data.dtype}")
        data = data.astype(np.float64)
        if not np.isfinite(data).all():
            raise ValueError("imu: contains NaN or inf")
        if data.shape[1] == 7:
            values, mask = self._resample(data[:, :6], data[:, 6])
        else:
            values, mask = self._latest(data)
        scale = np.array([p.accel_scale] * 3 + [p.gyro_scale] * 3)
        return {"imu": (values / scale).astype(np.float32), "mask": mask.astype(np.float32)}

    def _latest(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = self.params.window
        data = data[-w:]
        pad = w - len(data)
        mask = np.concatenate([np.zeros(pad), np.ones(len(data))])
        values = np.concatenate([np.repeat(data[:1], pad, axis=0), data])
        return values, mask

    def _resample(self, values: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if (t > 1e-6).any():
            raise ValueError(f"imu: time offsets (column 6) must be <= 0 (relative to the window "
                             f"end), got max {t.max():.6g}")
        if (np.diff(t) < 0).any():
            raise ValueError("imu: time offsets (column 6) must be non-decreasing (oldest first)")
        w, period = self.params.window, self.params.sample_period_s
        grid = -period * np.arange(w - 1, -1, -1, dtype=np.float64)
        # np.interp clamps outside the data: before the first sample that is exactly the
        # "repeat the first sample" padding, and those grid points are masked out.
        out = np.stack([np.interp(grid, t, values[:, c]) for c in range(IMU_CHANNELS)], axis=1)
        mask = grid >= t[0] - 1e-3 * period
        return out, mask

    def _check(self, imu: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.params.window
        if imu.ndim != 3 or tuple(imu.shape[1:]) != (w, IMU_CHANNELS):
            raise ValueError(f"imu: expected shape (B, {w}, {IMU_CHANNELS}), got "
                             f"{tuple(imu.shape)}")
        if mask is None:
            mask = imu.new_ones(imu.shape[:2])
        elif tuple(mask.shape) != tuple(imu.shape[:2]):
            raise ValueError(f"mask: expected shape (B, {w}) = {tuple(imu.shape[:2])}, got "
                             f"{tuple(mask.shape)}")
        mask = mask.to(imu.dtype)
        return torch.cat([imu, mask.unsqueeze(-1)], dim=-1), mask

    def forward(self, imu: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x, mask = self._check(imu, mask)
        return self.encode(x, mask)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C), (B, T) -> (B, C); an all-masked row gives zeros instead of NaN."""
    weights = mask.unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def _strided_indices(window: int, tokens: int) -> torch.Tensor:
    """`tokens` time indices spaced evenly back from the newest sample, oldest first."""
    stride = max(1, window // tokens)
    return torch.arange(window - 1, -1, -stride)[:tokens].flip(0)


@ENCODERS.register("imu_lstm")
class ImuLstmEncoder(ImuEncoderBase):
    """LSTM over the window -> 2 tokens: the final state and the masked mean of all states."""

    @dataclass
    class Params(ImuParams):
        layers: int = 1

        def __post_init__(self):
            super().__post_init__()
            _positive(self, "layers")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        self.lstm = nn.LSTM(IMU_CHANNELS + 1, params.hidden, num_layers=params.layers,
                            batch_first=True)
        self.last_proj = nn.Linear(params.hidden, d_model)
        self.pool_proj = nn.Linear(params.hidden, d_model)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(x)
        last = self.last_proj(states[:, -1])
        pooled = self.pool_proj(_masked_mean(states, mask))
        return torch.stack([last, pooled], dim=1)


@ENCODERS.register("imu_transformer")
class ImuTransformerEncoder(ImuEncoderBase):
    """Pre-norm transformer over a summary token plus the samples (learned positions; padded
    samples are excluded as keys) -> 1 summary token + (tokens - 1) time tokens, each the masked
    mean over one contiguous chunk of the window, so padding never reaches the output."""

    @dataclass
    class Params(ImuParams):
        layers: int = 2
        heads: int = 4
        tokens: int = 4  # summary token + (tokens - 1) chunk tokens

        def __post_init__(self):
            super().__post_init__()
            _positive(self, "layers", "heads", "tokens")
            if self.hidden % self.heads:
                raise ValueError(f"hidden ({self.hidden}) must be divisible by heads "
                                 f"({self.heads})")
            if self.tokens - 1 > self.window:
                raise ValueError(f"tokens - 1 ({self.tokens - 1}) must be <= window "
                                 f"({self.window})")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        h = params.hidden
        self.embed = nn.Linear(IMU_CHANNELS + 1, h)
        self.position = nn.Parameter(torch.randn(params.window, h) * 0.02)
        self.summary = nn.Parameter(torch.randn(h) * 0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(h, params.heads, dim_feedforward=2 * h, dropout=0.0,
                                       batch_first=True, norm_first=True)
            for _ in range(params.layers))
        self.norm = nn.LayerNorm(h)
        self.out = nn.Linear(h, d_model)
        chunks = torch.zeros(params.tokens - 1, params.window)
        for i in range(params.tokens - 1):
            chunks[i, i * params.window // (params.tokens - 1):
                   (i + 1) * params.window // (params.tokens - 1)] = 1.0
        self.register_buffer("chunks", chunks, persistent=False)
        self.chunk_embed = nn.Parameter(torch.randn(params.tokens, d_model) * 0.02)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        seq = torch.cat([self.summary.expand(b, 1, -1), self.embed(x) + self.position], dim=1)
        # The summary key is always present, so no query ever has every key masked.
        padding = torch.cat([mask.new_ones(b, 1), mask], dim=1) < 0.5
        for layer in self.layers:
            seq = layer(seq, src_key_padding_mask=padding)
        seq = self.norm(seq)
        weights = self.chunks * mask.unsqueeze(1)  # (B, chunks, T)
        pooled = weights @ seq[:, 1:] / weights.sum(-1, keepdim=True).clamp_min(1.0)
        return self.out(torch.cat([seq[:, :1], pooled], dim=1)) + self.chunk_embed


class _CausalConv(nn.Module):
    """Residual dilated causal 1-D conv: output at t sees inputs <= t only."""

    def __init__(self, channels: int, kernel: int, dilation: int):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.gelu(self.conv(F.pad(x, (self.pad, 0))))


@ENCODERS.register("imu_tcn")
class ImuTcnEncoder(ImuEncoderBase):
    """Dilated causal conv stack (dilations 1, 2, 4, ...) -> `tokens` strided time tokens ending
    at the newest sample; with the defaults the newest token sees the whole window."""

    @dataclass
    class Params(ImuParams):
        levels: int = 4
        kernel: int = 3
        tokens: int = 4

        def __post_init__(self):
            super().__post_init__()
            _positive(self, "levels", "tokens")
            if self.kernel < 2:
                raise ValueError(f"kernel must be >= 2, got {self.kernel}")
            if self.tokens > self.window:
                raise ValueError(f"tokens ({self.tokens}) must be <= window ({self.window})")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        h = params.hidden
        self.embed = nn.Conv1d(IMU_CHANNELS + 1, h, 1)
        self.blocks = nn.Sequential(*(_CausalConv(h, params.kernel, 2 ** i)
                                      for i in range(params.levels)))
        self.out = nn.Linear(h, d_model)
        self.time_embed = nn.Parameter(torch.randn(params.tokens, d_model) * 0.02)
        self.register_buffer("time_index", _strided_indices(params.window, params.tokens),
                             persistent=False)

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.embed(x.transpose(1, 2))).transpose(1, 2)
        return self.out(features[:, self.time_index]) + self.time_embed


@ENCODERS.register("imu_mlp")
class ImuMlpEncoder(ImuEncoderBase):
    """MLP over the flattened window (samples + mask) -> `tokens` tokens."""

    @dataclass
    class Params(ImuParams):
        hidden: int = 128
        tokens: int = 4

        def __post_init__(self):
            super().__post_init__()
            _positive(self, "tokens")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        self.tokens = params.tokens
        self.net = nn.Sequential(
            nn.Linear(params.window * (IMU_CHANNELS + 1), params.hidden), nn.GELU(),
            nn.Linear(params.hidden, params.hidden), nn.GELU(),
            nn.Linear(params.hidden, params.tokens * d_model))

    def encode(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).view(x.shape[0], self.tokens, self.d_model)
