"""Batched, seeded input perturbations on preprocessed tensors (normalised RGB, depth + validity).

Every function draws from an explicit torch.Generator on the tensors' device, so a training run
is reproducible and resumable. RGB perturbations work in [0, 1] pixel units (undoing and redoing
the model's mean/std normalisation); depth perturbations act on the range-normalised value
channel and mark dropped pixels invalid, like the holes the depth preprocessing reports.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from msvla_core.preprocessing import RGB_MEAN, RGB_STD


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.as_tensor(RGB_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.as_tensor(RGB_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return mean, std


def to_unit(rgb: torch.Tensor) -> torch.Tensor:
    mean, std = _stats(rgb)
    return rgb * std + mean


def from_unit(unit: torch.Tensor) -> torch.Tensor:
    mean, std = _stats(unit)
    return (unit - mean) / std


def uniform(shape, low: float, high: float, g: torch.Generator, device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, device=device)


def random_resized_crop(x: torch.Tensor, g: torch.Generator, scale=(0.4, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """Per-sample crop of a random area fraction and aspect ratio, resized back to the input size."""
    b, dev = x.shape[0], x.device
    area = uniform((b,), scale[0], scale[1], g, dev)
    log_r = uniform((b,), math.log(ratio[0]), math.log(ratio[1]), g, dev)
    w = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
    cx = (1 - w) * uniform((b,), -1.0, 1.0, g, dev)
    cy = (1 - h) * uniform((b,), -1.0, 1.0, g, dev)
    theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def colour_jitter(unit: torch.Tensor, g: torch.Generator, brightness: float, contrast: float,
                  saturation: float) -> torch.Tensor:
    """Per-sample brightness, contrast and saturation factors in [1 - a, 1 + a]; [0, 1] RGB in and out."""
    b, dev = unit.shape[0], unit.device
    shape = (b, 1, 1, 1)
    x = unit * uniform(shape, 1 - brightness, 1 + brightness, g, dev)
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * uniform(shape, 1 - contrast, 1 + contrast, g, dev) + mean
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = (x - grey) * uniform(shape, 1 - saturation, 1 + saturation, g, dev) + grey
    return x.clamp(0.0, 1.0)


def gaussian_noise(x: torch.Tensor, g: torch.Generator, std: float) -> torch.Tensor:
    if std <= 0:
        return x
    return x + std * torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype)


def noisy_rgb(rgb: torch.Tensor, g: torch.Generator, std: float) -> torch.Tensor:
    """Normalised RGB with Gaussian pixel noise of `std` ([0, 1] units), clipped like a camera's."""
    return from_unit(gaussian_noise(to_unit(rgb), g, std).clamp(0.0, 1.0))


def patch_mask(shape, g: torch.Generator, ratio: float, patch: int, device) -> torch.Tensor:
    """(B, 1, H, W) float mask, 1 on randomly chosen `patch`-sized squares (about `ratio` of them)."""
    b, _, h, w = shape
    coarse = (torch.rand((b, 1, -(-h // patch), -(-w // patch)), generator=g, device=device) < ratio).float()
    return F.interpolate(coarse, scale_factor=patch, mode="nearest")[:, :, :h, :w]


def drop_depth(depth: torch.Tensor, holes: torch.Tensor) -> torch.Tensor:
    """Depth input with the pixels where `holes` is 1 made invalid; their value becomes the local
    mean of the rest, as the preprocessing's hole filling would give."""
    value, valid = depth[:, :1], depth[:, 1:2]
    keep = 1.0 - holes
    num = F.avg_pool2d(value * keep, 7, stride=1, padding=3)
    den = F.avg_pool2d(keep, 7, stride=1, padding=3)
    filled = torch.where(den > 1e-3, num / den.clamp(min=1e-3), torch.ones_like(value))
    return torch.cat([value * keep + filled * holes, valid * keep], dim=1)


def noisy_depth(depth: torch.Tensor, g: torch.Generator, std: float, pixel_dropout: float,
                holes: int, hole_size: int) -> torch.Tensor:
    """Depth sensor noise: Gaussian noise on valid pixels, random pixel dropout and rectangular holes."""
    b, _, h, w = depth.shape
    dev = depth.device
    value, valid = depth[:, :1], depth[:, 1:2]
    if std > 0:
        value = (value + std * valid * torch.randn(value.shape, generator=g, device=dev)).clamp(0.0, 1.0)
    mask = (torch.rand((b, 1, h, w), generator=g, device=dev) < pixel_dropout).float()
    if holes > 0 and hole_size > 0:
        ys = torch.randint(0, max(1, h - hole_size), (b, holes), generator=g, device=dev)
        xs = torch.randint(0, max(1, w - hole_size), (b, holes), generator=g, device=dev)
        rows = torch.arange(h, device=dev).view(1, 1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, 1, w)
        inside = ((rows >= ys[..., None, None]) & (rows < ys[..., None, None] + hole_size)
                  & (cols >= xs[..., None, None]) & (cols < xs[..., None, None] + hole_size))
        mask = torch.maximum(mask, inside.any(dim=1, keepdim=True).float())
    return drop_depth(torch.cat([value, valid], dim=1), mask)


def rgb_bounds(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised values of black and white per channel (the range an image can take)."""
    mean, std = _stats(rgb)
    return -mean / std, (1 - mean) / std
