"""LiDAR encoders: PointNet++ set abstraction ("lidar_pointnet2") and a pillar BEV grid ("lidar_pillars").

Frames and units: points are in the sensor or robot base frame following REP-103 (x forward,
y left, z up), in metres. Raw input is float32 (N, 3) x, y, z or (N, 4) x, y, z, intensity.
Both encoders share one preprocess: rows with a NaN are dropped (organised clouds mark missing
returns that way), points outside the configured box are removed, the rest is thinned to
`max_points` by an even index stride (scan order is ring/azimuth order, so a stride keeps the
angular coverage) and zero-padded with a validity mask. The output is
{"points": (max_points, 4) x, y, z [m], intensity / intensity_scale; "mask": (max_points,) 1/0}.
A scan with no point inside the box is legal (all-zero mask): lidar_pointnet2 then returns zero
tokens (there are no centroids), lidar_pillars encodes an empty (free) BEV map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..encoders import conv_block
from ..registry import ENCODERS, ModalityEncoder


def prepare_points(raw, max_points: int, box: tuple[float, ...], intensity_scale: float,
                   name: str = "lidar points") -> dict[str, np.ndarray]:
    """Raw (N, 3|4) cloud -> {"points": (max_points, 4), "mask": (max_points,)} (see module doc)."""
    arr = np.asarray(raw)
    if arr.ndim != 2 or arr.shape[1] not in (3, 4):
        raise ValueError(f"{name}: expected shape (N, 3) or (N, 4), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: expected a float array, got dtype {arr.dtype}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: the cloud has no points")
    arr = arr.astype(np.float32, copy=False)
    # Column by column: row-wise reductions over (N, 4) cost several times more on large clouds.
    columns = [arr[:, i] for i in range(arr.shape[1])]
    nan = np.isnan(columns[0])
    for column in columns[1:]:
        nan |= np.isnan(column)
    if nan.all():
        raise ValueError(f"{name}: all {arr.shape[0]} points are NaN")
    if any((np.isinf(column) & ~nan).any() for column in columns):  # as before: NaN rows go first
        raise ValueError(f"{name}: contains inf values")
    keep = ~nan
    for column, lo, hi in zip(columns, box[0::2], box[1::2]):  # NaN compares False: dropped here too
        keep &= (column >= np.float32(lo)) & (column <= np.float32(hi))
    arr = arr[keep] if not keep.all() else arr
    n = arr.shape[0]
    if n > max_points:
        arr = arr[(np.arange(max_points) * n) // max_points]
        n = max_points
    points = np.zeros((max_points, 4), np.float32)
    points[:n, :3] = arr[:, :3]
    if arr.shape[1] == 4:
        points[:n, 3] = arr[:, 3] / intensity_scale
    mask = np.zeros(max_points, np.float32)
    mask[:n] = 1.0
    return {"points": points, "mask": mask}


def _check_box(box: tuple[float, ...], field: str) -> None:
    for axis, (lo, hi) in zip("xyz", zip(box[0::2], box[1::2])):
        if not lo < hi:
            raise ValueError(f"{field}: {axis} min {lo} must be below max {hi}")


def _check_inputs(points: torch.Tensor, mask: torch.Tensor, n: int) -> None:
    if points.dim() != 3 or points.shape[1:] != (n, 4):
        raise ValueError(f"points: expected shape (B, {n}, 4), got {tuple(points.shape)}")
    if mask.shape != points.shape[:2]:
        raise ValueError(f"mask: expected shape (B, {n}) = {tuple(points.shape[:2])}, "
                         f"got {tuple(mask.shape)}")


def shared_mlp(widths: list[int]) -> nn.Sequential:
    """Point-wise MLP over the last axis (the same weights for every point)."""
    layers: list[nn.Module] = []
    for cin, cout in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(cin, cout), nn.LayerNorm(cout), nn.ReLU()]
    return nn.Sequential(*layers)


def _gather(values: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """values (B, N, ...) indexed by idx (B, *S) -> (B, *S, ...)."""
    batch = torch.arange(values.shape[0], device=values.device).view(-1, *[1] * (idx.dim() - 1))
    return values[batch, idx]


@torch.no_grad()
def farthest_point_sample(xyz: torch.Tensor, valid: torch.Tensor, m: int) -> torch.Tensor:
    """Indices (B, m) of farthest-point centroids, starting from the first valid point.

    Padded points start at distance -1, so they are never chosen while a valid point is left;
    when fewer than m points are valid, the valid ones repeat (their distance drops to 0).
    """
    dist = torch.where(valid, torch.inf, -1.0).to(xyz.dtype)
    current = valid.to(torch.uint8).argmax(dim=1)
    # Channels-first makes the per-step reduction run over a contiguous axis (several times
    # faster on CPU); this loop is the encoder's dominant cost.
    xyz_t = xyz.transpose(1, 2).contiguous()
    chosen = []
    for _ in range(m):
        chosen.append(current)
        centre = xyz_t.gather(2, current.view(-1, 1, 1).expand(-1, 3, 1))
        torch.minimum(dist, (xyz_t - centre).square_().sum(1), out=dist)
        current = dist.argmax(dim=1)
    return torch.stack(chosen, dim=1)


@torch.no_grad()
def ball_query(xyz: torch.Tensor, valid: torch.Tensor, centres: torch.Tensor, radius: float,
               k: int) -> torch.Tensor:
    """The first k valid points (in index order) within radius of each centre: (B, S, k).

    Groups with fewer than k members repeat their first member, which leaves the max-pool
    unchanged. A valid centre is always its own member, so every valid group is non-empty.
    """
    n = xyz.shape[1]
    inside = (torch.cdist(centres, xyz) <= radius) & valid[:, None, :]
    order = torch.arange(n, device=xyz.device).expand_as(inside)
    keys = torch.where(inside, order, n)
    idx = keys.topk(min(k, n), dim=-1, largest=False).values
    idx = torch.where(idx == n, idx[..., :1], idx)
    return idx.clamp(max=n - 1)  # groups of padded centres; their output is zeroed


class SetAbstraction(nn.Module):
    """Sample centroids, group neighbours, PointNet on (offset / radius, features), max-pool."""

    def __init__(self, centroids: int, radius: float, samples: int, c_in: int, widths: tuple[int, ...]):
        super().__init__()
        self.centroids, self.radius, self.samples = centroids, radius, samples
        self.mlp = shared_mlp([3 + c_in, *widths])

    def forward(self, xyz, feats, valid):
        centre_idx = farthest_point_sample(xyz, valid, self.centroids)
        centres, centre_valid = _gather(xyz, centre_idx), _gather(valid, centre_idx)
        members = ball_query(xyz, valid, centres, self.radius, self.samples)
        offsets = (_gather(xyz, members) - centres[:, :, None]) / self.radius
        out = self.mlp(torch.cat([offsets, _gather(feats, members)], dim=-1)).amax(dim=2)
        return centres, out * centre_valid[..., None], centre_valid


Box = tuple[float, float, float, float, float, float]


@ENCODERS.register("lidar_pointnet2")
class PointNet2Encoder(ModalityEncoder):
    """Two PointNet++ set-abstraction levels; tokens are the level-2 centroids (B, M, d_model).

    Each token is the centroid's pooled feature plus a positional MLP of its xyz (box-normalised),
    so downstream blocks see where in the sensor frame (REP-103, metres) each token lies.
    Tokens of padded centroids (only possible for a scan with no valid point) are zero.
    """

    modality = "lidar"

    @dataclass
    class Params:
        max_points: int = 1024
        range_m: Box = (-20.0, 20.0, -20.0, 20.0, -2.0, 3.0)  # x_min, x_max, y_min, y_max, z_min, z_max
        intensity_scale: float = 255.0
        centroids: tuple[int, int] = (128, 32)
        radii_m: tuple[float, float] = (2.0, 5.0)
        samples: tuple[int, int] = (16, 16)
        mlp1: tuple[int, ...] = (32, 32, 64)
        mlp2: tuple[int, ...] = (64, 64, 128)
        pos_hidden: int = 64

        def __post_init__(self):
            _check_box(self.range_m, "range_m")
            for field in ("max_points", "intensity_scale", "pos_hidden"):
                if getattr(self, field) <= 0:
                    raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
            for field in ("centroids", "radii_m", "samples", "mlp1", "mlp2"):
                values = getattr(self, field)
                if not values or any(v <= 0 for v in values):
                    raise ValueError(f"{field} must be non-empty and positive, got {values}")
            if not self.centroids[1] <= self.centroids[0] <= self.max_points:
                raise ValueError(f"centroids {self.centroids} must decrease and not exceed "
                                 f"max_points={self.max_points}")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        p = params
        self.sa1 = SetAbstraction(p.centroids[0], p.radii_m[0], p.samples[0], 1, p.mlp1)
        self.sa2 = SetAbstraction(p.centroids[1], p.radii_m[1], p.samples[1], p.mlp1[-1], p.mlp2)
        self.proj = nn.Linear(p.mlp2[-1], d_model)
        self.pos = nn.Sequential(nn.Linear(3, p.pos_hidden), nn.ReLU(), nn.Linear(p.pos_hidden, d_model))
        box = torch.tensor(p.range_m, dtype=torch.float32)
        self.register_buffer("box_centre", (box[0::2] + box[1::2]) / 2, persistent=False)
        self.register_buffer("box_half", (box[1::2] - box[0::2]) / 2, persistent=False)

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        return prepare_points(raw, p.max_points, p.range_m, p.intensity_scale)

    def forward(self, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _check_inputs(points, mask, self.params.max_points)
        valid = mask > 0.5
        xyz, feats = points[..., :3], points[..., 3:]
        xyz1, feats1, valid1 = self.sa1(xyz, feats, valid)
        xyz2, feats2, valid2 = self.sa2(xyz1, feats1, valid1)
        tokens = self.proj(feats2) + self.pos((xyz2 - self.box_centre) / self.box_half)
        return tokens * valid2[..., None]


@ENCODERS.register("lidar_pillars")
class PillarEncoder(ModalityEncoder):
    """Pillar BEV encoder: PointNet per x-y pillar, scatter to a BEV map, small 2-D CNN.

    BEV layout: before the CNN, cell (i, j) covers x in [x_min + i*res, x_min + (i+1)*res) and
    y in [y_min + j*res, ...) (REP-103 sensor/base frame, metres); rows follow x, columns y. The
    CNN halves the map per entry of cnn_channels; tokens are its cells, row-major (B, H*W,
    d_model) with `grid` = (H, W), each plus a positional MLP of the cell centre.
    """

    modality = "lidar"

    @dataclass
    class Params:
        max_points: int = 4096
        x_range: tuple[float, float] = (-25.6, 25.6)
        y_range: tuple[float, float] = (-25.6, 25.6)
        z_range: tuple[float, float] = (-2.0, 3.0)
        resolution_m: float = 0.8
        max_points_per_pillar: int = 16
        intensity_scale: float = 255.0
        pillar_channels: int = 32
        cnn_channels: tuple[int, ...] = (32, 64)
        pos_hidden: int = 64

        def __post_init__(self):
            _check_box((*self.x_range, *self.y_range, *self.z_range), "x_range/y_range/z_range")
            for field in ("max_points", "resolution_m", "max_points_per_pillar", "intensity_scale",
                          "pillar_channels", "pos_hidden"):
                if getattr(self, field) <= 0:
                    raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
            if any(c <= 0 for c in self.cnn_channels):
                raise ValueError(f"cnn_channels must be positive, got {self.cnn_channels}")
            cells = [(r[1] - r[0]) / self.resolution_m for r in (self.x_range, self.y_range)]
            if max(cells) > 1024:
                raise ValueError(f"resolution_m={self.resolution_m} gives a BEV grid of "
                                 f"{cells[0]:.0f} x {cells[1]:.0f} cells (limit 1024 per axis)")

    def __init__(self, params: Params, d_model: int):
        super().__init__(params, d_model)
        p = params
        self.bev = tuple(math.ceil((r[1] - r[0]) / p.resolution_m - 1e-6) for r in (p.x_range, p.y_range))
        # offset to pillar centre (2), z (1), intensity (1), offset to the pillar's point mean (3)
        self.point_net = shared_mlp([7, p.pillar_channels])
        stages, cin, (h, w) = [], p.pillar_channels + 1, self.bev  # +1: occupancy channel
        for cout in p.cnn_channels:
            stages.append(conv_block(cin, cout, 2))
            cin, h, w = cout, (h + 1) // 2, (w + 1) // 2
        self.cnn = nn.Sequential(*stages, nn.Conv2d(cin, d_model, 1))
        self._grid = (h, w)
        self.pos = nn.Sequential(nn.Linear(2, p.pos_hidden), nn.ReLU(), nn.Linear(p.pos_hidden, d_model))
        u = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
        v = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1
        self.register_buffer("cell_uv", torch.stack(torch.meshgrid(u, v, indexing="ij"), -1).view(-1, 2),
                             persistent=False)

    @property
    def grid(self) -> tuple[int, int]:
        return self._grid

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        return prepare_points(raw, p.max_points, (*p.x_range, *p.y_range, *p.z_range), p.intensity_scale)

    def forward(self, points: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        p = self.params
        _check_inputs(points, mask, p.max_points)
        b = points.shape[0]
        (nx, ny), res = self.bev, p.resolution_m
        z0, z1 = p.z_range
        ix = torch.floor((points[..., 0] - p.x_range[0]) / res).long()
        iy = torch.floor((points[..., 1] - p.y_range[0]) / res).long()
        keep = ((mask > 0.5) & (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
                & (points[..., 2] >= z0) & (points[..., 2] <= z1))
        batch = torch.arange(b, device=points.device)[:, None].expand_as(ix)
        ids = ((batch * nx + ix) * ny + iy)[keep]
        pts = points[keep]
        # Cap each pillar at max_points_per_pillar, keeping its earliest points in scan order.
        sorted_ids, order = torch.sort(ids, stable=True)
        rank = torch.arange(ids.numel(), device=ids.device) - torch.searchsorted(sorted_ids, sorted_ids)
        order = order[rank < p.max_points_per_pillar]
        ids, pts = ids[order], pts[order]

        cells = b * nx * ny
        count = torch.zeros(cells, device=points.device, dtype=pts.dtype)
        count.index_add_(0, ids, torch.ones_like(ids, dtype=pts.dtype))
        mean = torch.zeros(cells, 3, device=points.device, dtype=pts.dtype).index_add_(0, ids, pts[:, :3])
        mean = mean / count.clamp(min=1)[:, None]
        cx = p.x_range[0] + ((ids // ny) % nx + 0.5) * res
        cy = p.y_range[0] + (ids % ny + 0.5) * res
        feats = torch.stack([(pts[:, 0] - cx) / res, (pts[:, 1] - cy) / res,
                             (pts[:, 2] - (z0 + z1) / 2) / ((z1 - z0) / 2), pts[:, 3]], dim=-1)
        feats = torch.cat([feats, (pts[:, :3] - mean[ids]) / res], dim=-1)
        # ReLU outputs are >= 0, so a zero map is the neutral start for the max and empty pillars stay 0.
        pillars = torch.zeros(cells, p.pillar_channels, device=points.device, dtype=pts.dtype)
        pillars = pillars.scatter_reduce(0, ids[:, None].expand(-1, p.pillar_channels),
                                         self.point_net(feats), reduce="amax")
        occupancy = (count / p.max_points_per_pillar).clamp(max=1.0)[:, None]
        bev = torch.cat([pillars, occupancy], dim=1).view(b, nx, ny, -1).permute(0, 3, 1, 2)
        tokens = self.cnn(bev).flatten(2).transpose(1, 2)
        return tokens + self.pos(self.cell_uv)
