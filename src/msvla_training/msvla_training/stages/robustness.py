"""Stage robustness: the grasp task under sensor noise and FGSM adversarial RGB.

Each step feeds one input mode (RGB-D by default; the fusion stage's mode weights, so the RGB-only
and depth-only graphs can be hardened too) and splits the batch into a clean, a noisy and an
adversarial part by the configured fractions. The loss is the sample-weighted mean of the three
parts' losses: clean and perturbed supervision mix in every step at about the cost of 1.25 plain
steps (a pass of every perturbation over the whole batch would cost 3.5). Noisy: Gaussian RGB pixel noise,
depth noise, pixel dropout and rectangular holes. Adversarial: the clean RGB moved by epsilon
(normalised units) along the sign of the clean loss's input gradient (FGSM), clipped to the range
an image can take; without RGB the adversarial part is trained clean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import augment
from .base import check_fraction, check_non_negative
from .fusion import Params as ModeWeights
from .task import TaskStage, draw_mode


@dataclass
class Params(ModeWeights):
    rgbd: float = 1.0  # input-mode weights, as in the fusion stage
    rgb_only: float = 0.0
    depth_only: float = 0.0
    noisy_fraction: float = 0.25  # of each batch; the rest not noisy or adversarial stays clean
    adversarial_fraction: float = 0.25
    rgb_noise_std: float = 0.03  # [0, 1] pixel units
    depth_noise_std: float = 0.003  # range-normalised units (x 2.9 m with the default range)
    depth_pixel_dropout: float = 0.05
    depth_holes: int = 2  # rectangular holes per image
    depth_hole_size: int = 12  # pixels
    fgsm_epsilon: float = 0.03  # normalised RGB units

    def __post_init__(self):
        super().__post_init__()
        check_fraction(self, "noisy_fraction", "adversarial_fraction", "depth_pixel_dropout")
        check_non_negative(self, "rgb_noise_std", "depth_noise_std", "depth_holes", "depth_hole_size",
                           "fgsm_epsilon")
        if self.noisy_fraction + self.adversarial_fraction > 1.0:
            raise ValueError(f"noisy_fraction + adversarial_fraction must be <= 1, got "
                             f"{self.noisy_fraction} + {self.adversarial_fraction}")


def take(batch: dict, part: slice) -> dict:
    return {k: v[part] for k, v in batch.items()}


class Robustness(TaskStage):
    name = "robustness"
    Params = Params

    def split(self, b: int) -> tuple[int, int, int]:
        """(clean, noisy, adversarial) sample counts of a batch of b."""
        noisy = round(b * self.params.noisy_fraction)
        adversarial = min(b - noisy, round(b * self.params.adversarial_fraction))
        return b - noisy - adversarial, noisy, adversarial

    def forward(self, batch, rng):
        p = self.params
        mode = draw_mode(p.weights(), rng.shared)
        b = batch["rgb"].shape[0]
        n_clean, n_noisy, n_adv = self.split(b)
        if mode == "depth":  # FGSM here perturbs RGB only
            n_clean, n_adv = n_clean + n_adv, 0
        total, parts = batch["rgb"].new_zeros(()), {}
        clean = take(batch, slice(0, n_clean))
        noisy = take(batch, slice(n_clean, n_clean + n_noisy))
        adv = take(batch, slice(n_clean + n_noisy, b))
        if n_clean:
            loss, lp = self.task_loss(clean, mode)
            total = total + loss * n_clean / b
            parts.update(clean=loss.item(), clean_cell_acc=lp["cell_acc"])
        if n_noisy:
            rgb = augment.noisy_rgb(noisy["rgb"], rng.local, p.rgb_noise_std)
            depth = augment.noisy_depth(noisy["depth"], rng.local, p.depth_noise_std, p.depth_pixel_dropout,
                                        p.depth_holes, p.depth_hole_size)
            loss, lp = self.task_loss(noisy, mode, rgb=rgb, depth=depth)
            total = total + loss * n_noisy / b
            parts.update(noisy=loss.item(), noisy_cell_acc=lp["cell_acc"])
        if n_adv:
            source = adv["rgb"].detach().clone().requires_grad_(True)
            clean_loss, _ = self.task_loss(adv, mode, rgb=source)
            # Only the input gradient: the parameters learn from the adversarial loss below.
            (grad,) = torch.autograd.grad(clean_loss, source)
            low, high = augment.rgb_bounds(adv["rgb"])
            moved = torch.minimum(torch.maximum(adv["rgb"] + p.fgsm_epsilon * grad.sign(), low), high).detach()
            loss, lp = self.task_loss(adv, mode, rgb=moved)
            total = total + loss * n_adv / b
            parts.update(adversarial=loss.item(), adversarial_cell_acc=lp["cell_acc"],
                         adversarial_gain=loss.item() - clean_loss.item())
        parts["mode_" + mode] = 1.0
        return total, parts
