"""Training losses of the spatial grasp VLA: the grasp task loss and the contrastive objectives.

The task loss is shared by the bootstrap trainer and every task stage of msvla-train, so a model
trained either way is supervised identically.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from msvla_core.models.config import GraspModelConfig

# Range of the head's height offset (SpatialGraspHead: dz = 0.05 * tanh(.)).
DZ_RANGE_M = 0.05


class HeadOutputs:
    """Captures the head's raw per-cell outputs (logit, sin 2yaw, cos 2yaw, width, dz) during the
    monolithic forward pass, so the regression losses need no second head evaluation."""

    def __init__(self, model):
        self.value: torch.Tensor | None = None
        self._handle = model.head.out.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.value = output

    def remove(self) -> None:
        self._handle.remove()


def grasp_loss(pred, raw: torch.Tensor, batch: dict, config: GraspModelConfig):
    """Heat-map cross-entropy toward the label cell plus per-cell regressions at it.
    Returns (loss, parts) where parts holds python floats for logging."""
    b = raw.shape[0]
    raw = raw.float()
    cell = batch["cell"]
    heat = pred.heatmap.reshape(b, -1).float()
    ce = F.nll_loss(heat, cell)
    at = raw.flatten(2)[torch.arange(b, device=raw.device), :, cell]  # (B, 5)

    # Yaw as (sin 2yaw, cos 2yaw). Boxes: regress the half-turn-symmetric vector. Cubes: compare
    # the quarter-turn-symmetric angle 4*yaw so either of the two equivalent grasps is right.
    # Cylinders: no yaw loss.
    s, c = at[:, 1], at[:, 2]
    kind, yaw = batch["kind"], batch["yaw"]
    box = (kind == 1).float()
    cube = (kind == 2).float()
    box_err = (s - torch.sin(2 * yaw)) ** 2 + (c - torch.cos(2 * yaw)) ** 2
    norm = torch.sqrt(s * s + c * c + 1e-6)
    sn, cn = s / norm, c / norm
    sin4, cos4 = 2 * sn * cn, cn * cn - sn * sn
    cube_err = (1 - (sin4 * torch.sin(4 * yaw) + cos4 * torch.cos(4 * yaw))) + 0.1 * (norm - 1) ** 2
    yaw_loss = (box * box_err + cube * cube_err).sum() / (box + cube).sum().clamp(min=1.0)

    width = config.max_gripper_width_m * torch.sigmoid(at[:, 3])
    width_loss = ((width - batch["width"]) / 0.01).pow(2).mean()
    dz = DZ_RANGE_M * torch.tanh(at[:, 4])
    dz_loss = ((dz - batch["dz"]) / 0.01).pow(2).mean()
    total = ce + yaw_loss + 0.1 * width_loss + 0.1 * dz_loss
    acc = (heat.argmax(dim=1) == cell).float().mean()
    return total, {"ce": ce.item(), "yaw": yaw_loss.item(), "width": width_loss.item(),
                   "dz": dz_loss.item(), "cell_acc": acc.item()}


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: each of the 2B views must pick its partner among the other 2B - 1."""
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.t() / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, partner)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE between paired rows of `a` and `b` (row i of each is the positive)."""
    a = F.normalize(a.float(), dim=1)
    b = F.normalize(b.float(), dim=1)
    logits = a @ b.t() / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
