"""A small DDPM action head: denoises an action chunk conditioned on the pooled tokens."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import HEADS
from .common import AttentionPool, check_positive, check_tokens, mlp, target


def cosine_betas(steps: int, max_beta: float) -> torch.Tensor:
    """Noise schedule of Nichol & Dhariwal (2021), in float64 for exact cumulative products.

    With few steps the last betas of the cosine schedule approach 1, and dividing by
    sqrt(1 - beta) in the first reverse step would amplify the denoiser's error; max_beta caps
    that while the final signal fraction stays near zero (about 3e-4 for 20 steps).
    """
    s = 0.008
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    alpha_bar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the integer timesteps t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@HEADS.register("diffusion")
class DiffusionHead(nn.Module):
    """DDPM over an action chunk of `horizon` steps of `action_dim` values.

    A diffusion head represents multi-modal action distributions (either side of an obstacle)
    that a Gaussian or a regression head averages away. Actions should be normalised by the trainer
    to roughly unit scale: the noise schedule assumes it.

    forward(tokens): in train mode returns {"condition": (B, hidden)} only, because training needs
    the noise-prediction loss, not samples. In eval mode it also runs the full reverse process and
    returns "action" (B, horizon, action_dim). That sampling uses a generator seeded with
    Params.seed on every call, so the same input batch always gives the same action: replays,
    tests and the live node agree. Use sample(condition, generator) for independent draws.
    Loss: noise (MSE of the predicted noise at uniformly drawn timesteps), total. Targets: action
    (B, horizon, action_dim), or (B, action_dim) when horizon is 1.
    """

    @dataclass
    class Params:
        action_dim: int = 7
        horizon: int = 8
        steps: int = 20
        hidden: int = 128
        time_dim: int = 32
        max_beta: float = 0.95
        # Clip the predicted clean action to [-clip_sample, clip_sample] while sampling (None: off).
        clip_sample: float | None = None
        seed: int = 0

        def __post_init__(self):
            check_positive(self, "action_dim", "horizon", "steps", "hidden", "time_dim")
            if self.time_dim % 2:
                raise ValueError(f"time_dim={self.time_dim} must be even (sine and cosine halves)")
            if not 0.0 < self.max_beta < 1.0:
                raise ValueError(f"max_beta={self.max_beta} must lie in (0, 1)")
            if self.clip_sample is not None and not self.clip_sample > 0:
                raise ValueError(f"clip_sample={self.clip_sample} must be positive or None")
            if self.seed < 0:
                raise ValueError(f"seed={self.seed} must be >= 0")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        self.params, self.d_model = params, d_model
        flat = params.action_dim * params.horizon
        self.pool = AttentionPool(d_model)
        self.condition = nn.Sequential(nn.Linear(d_model, params.hidden), nn.GELU())
        self.denoiser = mlp(flat + params.hidden + params.time_dim, params.hidden, flat)

        betas = cosine_betas(params.steps, params.max_beta)
        alphas = 1 - betas
        alpha_bar = torch.cumprod(alphas, 0)
        prev = torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]])
        schedule = {
            "sqrt_alpha_bar": alpha_bar.sqrt(), "sqrt_one_minus_alpha_bar": (1 - alpha_bar).sqrt(),
            # posterior q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var)
            "post_c0": betas * prev.sqrt() / (1 - alpha_bar),
            "post_ct": (1 - prev) * alphas.sqrt() / (1 - alpha_bar),
            "post_std": (betas * (1 - prev) / (1 - alpha_bar)).sqrt(),
        }
        for name, value in schedule.items():  # derived from Params, so not saved in checkpoints
            self.register_buffer(name, value.float(), persistent=False)

    def predict_noise(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """x (B, horizon, action_dim), t (B,) integer steps, condition (B, hidden) -> noise like x."""
        emb = timestep_embedding(t, self.params.time_dim)
        out = self.denoiser(torch.cat([x.flatten(1), condition, emb], dim=-1))
        return out.view_as(x)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "diffusion")
        condition = self.condition(self.pool(tokens))
        if self.training:
            return {"condition": condition}
        generator = torch.Generator(device=tokens.device).manual_seed(self.params.seed)
        return {"condition": condition, "action": self.sample(condition, generator)}

    def sample(self, condition: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Run the reverse process: (B, hidden) -> actions (B, horizon, action_dim)."""
        p = self.params
        b = condition.shape[0]
        shape = (b, p.horizon, p.action_dim)
        x = torch.randn(shape, generator=generator, device=condition.device, dtype=condition.dtype)
        for step in reversed(range(p.steps)):
            t = torch.full((b,), step, device=condition.device, dtype=torch.long)
            eps = self.predict_noise(x, t, condition)
            x0 = (x - self.sqrt_one_minus_alpha_bar[step] * eps) / self.sqrt_alpha_bar[step]
            if p.clip_sample is not None:
                x0 = x0.clamp(-p.clip_sample, p.clip_sample)
            x = self.post_c0[step] * x0 + self.post_ct[step] * x
            if step > 0:
                noise = torch.randn(shape, generator=generator, device=x.device, dtype=x.dtype)
                x = x + self.post_std[step] * noise
        return x

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = self.params
        condition = outputs["condition"]
        b = condition.shape[0]
        if p.horizon == 1 and "action" in targets and torch.as_tensor(targets["action"]).dim() == 2:
            targets = {**targets, "action": torch.as_tensor(targets["action"])[:, None]}
        x0 = target(targets, "action", (b, p.horizon, p.action_dim), "diffusion", condition)
        t = torch.randint(0, p.steps, (b,), device=condition.device)
        noise = torch.randn_like(x0)
        xt = self.sqrt_alpha_bar[t, None, None] * x0 + self.sqrt_one_minus_alpha_bar[t, None, None] * noise
        mse = F.mse_loss(self.predict_noise(xt, t, condition), noise)
        return {"noise": mse, "total": mse}
