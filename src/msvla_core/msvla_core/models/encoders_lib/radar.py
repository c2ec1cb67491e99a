"""Radar encoders: a target list ("radar_points") and a range-Doppler map ("radar_rd_map").

Frames and units: the sensor frame follows REP-103 (x forward, y left, z up); azimuth is in
radians, counter-clockwise from +x (positive to the left), range in metres, radial velocity in
m/s (positive = moving away), RCS in dBsm, range-Doppler power in dB.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..encoders import conv_block
from ..registry import ENCODERS, ModalityEncoder


def _positive(params, *fields: str) -> None:
    for field in fields:
        if getattr(params, field) <= 0:
            raise ValueError(f"{field} must be positive, got {getattr(params, field)}")


@ENCODERS.register("radar_points")
class RadarPointsEncoder(ModalityEncoder):
    """Per-target MLP then one masked self-attention layer.

    preprocess: raw float32 (N, 4) targets [range m, azimuth rad, radial velocity m/s, RCS dBsm]
    (N may be 0) -> {"targets": (max_targets, 4) [x m, y m, radial velocity m/s, RCS dBsm],
    "mask": (max_targets,) 1/0}. With more than max_targets detections the strongest (highest
    RCS) are kept, in their original order.
    forward -> (B, 1 + max_targets, d_model): a pooled token (masked mean; a learned constant
    when there is no detection, which is itself information) then one token per target slot,
    zero for padded slots.
    """

    modality = "radar"

    @dataclass
    class Params:
        max_targets: int = 64
        hidden: int = 64
        num_heads: int = 4
        range_scale_m: float = 50.0
        velocity_scale_mps: float = 10.0
        rcs_offset_dbsm: float = 0.0
        rcs_scale_db: float = 20.0

        def __post_init__(self):
            _positive(self, "max_targets", "hidden", "num_heads", "range_scale_m",
                      "velocity_scale_mps", "rcs_scale_db")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        if d_model % params.num_heads:
            raise ValueError(f"num_heads={params.num_heads} must divide d_model={d_model}")
        # x, y, range (all / range_scale), radial velocity, RCS (normalised)
        self.embed = nn.Sequential(nn.Linear(5, params.hidden), nn.ReLU(), nn.Linear(params.hidden, d_model))
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_out = nn.Linear(d_model, d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))
        self.pool = nn.Linear(d_model, d_model)

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        arr = np.asarray(raw)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise ValueError(f"radar targets: expected shape (N, 4) [range, azimuth, radial "
                             f"velocity, rcs], got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"radar targets: expected a float array, got dtype {arr.dtype}")
        arr = arr.astype(np.float32, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError("radar targets: contains NaN or inf values")
        if (arr[:, 0] < 0).any():
            raise ValueError("radar targets: range (column 0) must not be negative")
        m = self.params.max_targets
        if arr.shape[0] > m:
            strongest = np.sort(np.argsort(-arr[:, 3], kind="stable")[:m])
            arr = arr[strongest]
        n = arr.shape[0]
        targets = np.zeros((m, 4), np.float32)
        targets[:n, 0] = arr[:, 0] * np.cos(arr[:, 1])
        targets[:n, 1] = arr[:, 0] * np.sin(arr[:, 1])
        targets[:n, 2:] = arr[:, 2:]
        mask = np.zeros(m, np.float32)
        mask[:n] = 1.0
        return {"targets": targets, "mask": mask}

    def forward(self, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p = self.params
        if targets.dim() != 3 or targets.shape[1:] != (p.max_targets, 4):
            raise ValueError(f"targets: expected shape (B, {p.max_targets}, 4), got {tuple(targets.shape)}")
        if mask.shape != targets.shape[:2]:
            raise ValueError(f"mask: expected shape (B, {p.max_targets}), got {tuple(mask.shape)}")
        valid = mask > 0.5
        xy = targets[..., :2] / p.range_scale_m
        feats = torch.cat([xy, xy.norm(dim=-1, keepdim=True), targets[..., 2:3] / p.velocity_scale_mps,
                           (targets[..., 3:4] - p.rcs_offset_dbsm) / p.rcs_scale_db], dim=-1)
        x = self.embed(feats)
        x = x + self._attend(self.norm1(x), valid)
        x = x + self.ffn(self.norm2(x))
        x = x * valid[..., None]
        count = valid.sum(dim=1, keepdim=True).clamp(min=1)
        pooled = self.pool(x.sum(dim=1) / count)
        return torch.cat([pooled[:, None], x], dim=1)

    def _attend(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        h = self.params.num_heads
        q, k, v = self.qkv(x).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        # A scan without detections would leave every key masked (NaN softmax); let it attend
        # freely, its outputs are zeroed afterwards anyway.
        keys = valid | ~valid.any(dim=1, keepdim=True)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keys[:, None, None, :])
        return self.attn_out(out.transpose(1, 2).reshape(b, n, d))


@ENCODERS.register("radar_rd_map")
class RangeDopplerEncoder(ModalityEncoder):
    """Small CNN over a range-Doppler map; tokens are its output cells.

    preprocess: raw float32 (range_bins, doppler_bins) power in dB, rows = range bins (row 0
    nearest), columns = Doppler bins (zero velocity centred, i.e. FFT-shifted) -> {"rd_map":
    (1, R, D)} with (dB - db_min) / (db_max - db_min) clipped to [0, 1].
    forward -> (B, h*w, d_model), row-major over `grid` = (h, w) (R and D halved per stage),
    each token plus a learned embedding of its cell.
    """

    modality = "radar_rd"

    @dataclass
    class Params:
        range_bins: int = 64
        doppler_bins: int = 64
        db_min: float = 0.0
        db_max: float = 80.0
        channels: tuple[int, ...] = (16, 32, 64)

        def __post_init__(self):
            _positive(self, "range_bins", "doppler_bins")
            if not self.db_min < self.db_max:
                raise ValueError(f"db_min={self.db_min} must be below db_max={self.db_max}")
            if not self.channels or any(c <= 0 for c in self.channels):
                raise ValueError(f"channels must be non-empty and positive, got {self.channels}")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        stages, cin = [], 1
        h, w = params.range_bins, params.doppler_bins
        for cout in params.channels:
            stages.append(conv_block(cin, cout, 2))
            cin, h, w = cout, (h + 1) // 2, (w + 1) // 2
        self.cnn = nn.Sequential(*stages, nn.Conv2d(cin, d_model, 1))
        self._grid = (h, w)
        self.cell_embedding = nn.Parameter(torch.randn(1, h * w, d_model) * 0.02)

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        arr = np.asarray(raw)
        if arr.shape != (p.range_bins, p.doppler_bins):
            raise ValueError(f"rd_map: expected shape ({p.range_bins}, {p.doppler_bins}) "
                             f"(range_bins, doppler_bins), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"rd_map: expected a float array, got dtype {arr.dtype}")
        if not np.isfinite(arr).all():
            raise ValueError("rd_map: contains NaN or inf values")
        norm = np.clip((arr.astype(np.float32) - p.db_min) / (p.db_max - p.db_min), 0.0, 1.0)
        return {"rd_map": norm[None].astype(np.float32)}

    def forward(self, rd_map: torch.Tensor) -> torch.Tensor:
        p = self.params
        if rd_map.dim() != 4 or rd_map.shape[1:] != (1, p.range_bins, p.doppler_bins):
            raise ValueError(f"rd_map: expected shape (B, 1, {p.range_bins}, {p.doppler_bins}), "
                             f"got {tuple(rd_map.shape)}")
        return self.cnn(rd_map).flatten(2).transpose(1, 2) + self.cell_embedding
