"""Stage pretrain_rgb: SimCLR-style contrastive pretraining of the RGB encoder.

Two augmented views of each image (random resized crop, colour jitter, Gaussian noise) go
through the RGB encoder, are pooled and projected by a training-only head, and NT-Xent asks each
view to find its partner among all views of the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..losses import nt_xent
from . import augment
from .base import Stage, check_fraction, check_non_negative, check_positive


@dataclass
class Params:
    temperature: float = 0.2
    projection_dim: int = 64
    crop_scale: tuple[float, float] = (0.4, 1.0)  # area fraction of the random crops
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    noise_std: float = 0.03  # [0, 1] pixel units

    def __post_init__(self):
        check_positive(self, "temperature", "projection_dim")
        check_fraction(self, "brightness", "contrast", "saturation")
        check_non_negative(self, "noise_std")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max <= 1, got {list(self.crop_scale)}")


def projection_head(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(nn.Linear(cin, 128), nn.ReLU(inplace=True), nn.Linear(128, cout))


class PretrainRgb(Stage):
    name = "pretrain_rgb"
    Params = Params
    components = ("encoder.rgb",)
    inputs = ("rgb",)

    def __init__(self, model, params: Params):
        super().__init__(model, params)
        self.projection = projection_head(model.config.rgb_channels, params.projection_dim)

    def view(self, rgb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        p = self.params
        unit = augment.to_unit(augment.random_resized_crop(rgb, g, p.crop_scale))
        unit = augment.colour_jitter(unit, g, p.brightness, p.contrast, p.saturation)
        return augment.from_unit(augment.gaussian_noise(unit, g, p.noise_std).clamp(0.0, 1.0))

    def uses_every_parameter(self) -> bool:
        return True

    def forward(self, batch, rng):
        rgb = batch["rgb"]
        views = torch.cat([self.view(rgb, rng.local), self.view(rgb, rng.local)])
        z = self.projection(self.model.rgb_encoder(views).mean(dim=(2, 3)))
        z1, z2 = z.chunk(2)
        loss = nt_xent(z1, z2, self.params.temperature)
        with torch.no_grad():  # how often a view's nearest other view is its partner
            zn = nn.functional.normalize(z.float(), dim=1)
            sim = (zn @ zn.t()).fill_diagonal_(-2.0)
            b = rgb.shape[0]
            partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(sim.device)
            top1 = (sim.argmax(dim=1) == partner).float().mean()
        return loss, {"nt_xent": loss.item(), "top1": top1.item()}
