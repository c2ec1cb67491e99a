"""The grasp task loss as the task stages (fusion, finetune, robustness) run it.

An input mode says which sensors a step feeds the model: "rgbd" (both, depth geometry), "rgb"
(no depth: the RGB encoder carries the table-plane geometry, and the labels are those on that
geometry's grid) or "depth" (no RGB). These are the three ways the live graphs run the model.
"""
from __future__ import annotations

import torch

from msvla_core.models.grasp_vla import COMPONENTS

from ..losses import HeadOutputs, grasp_loss
from .base import Stage

MODES = ("rgbd", "rgb", "depth")
LABELS = ("cell", "yaw", "kind", "width", "dz", "rgb_cell", "rgb_dz")


def model_inputs(batch: dict, mode: str, rgb: torch.Tensor | None = None,
                 depth: torch.Tensor | None = None) -> dict:
    """Keyword inputs of GraspVLA.forward for `mode`; `rgb` / `depth` override the batch's."""
    rgb = batch["rgb"] if rgb is None else rgb
    depth = batch["depth"] if depth is None else depth
    if mode == "rgbd":
        return {"rgb": rgb, "depth": depth, "geometry": batch["geometry"]}
    if mode == "rgb":
        return {"rgb": rgb, "rgb_geometry": batch["rgb_geometry"]}
    if mode == "depth":
        return {"depth": depth, "geometry": batch["geometry"]}
    raise ValueError(f"unknown input mode {mode!r}; expected one of {MODES}")


def mode_labels(batch: dict, mode: str) -> dict:
    """Labels for `mode`: RGB-only grasps are read from the plane geometry, so its cell and height
    offset are the ones computed on that grid."""
    labels = {k: batch[k] for k in ("cell", "yaw", "kind", "width", "dz")}
    if mode == "rgb":
        labels["cell"], labels["dz"] = batch["rgb_cell"], batch["rgb_dz"]
    return labels


class TaskStage(Stage):
    components = tuple(COMPONENTS)
    inputs = ("rgb", "depth", "geometry", "rgb_geometry") + LABELS
    needs_instruction = True

    def __init__(self, model, params):
        super().__init__(model, params)
        self.capture = HeadOutputs(model)

    def task_loss(self, batch: dict, mode: str, rgb=None, depth=None):
        pred = self.model(batch["instruction"], **model_inputs(batch, mode, rgb, depth))
        return grasp_loss(pred, self.capture.value, mode_labels(batch, mode), self.model.config)

    def close(self) -> None:
        self.capture.remove()


def draw_mode(weights: dict[str, float], g: torch.Generator) -> str:
    """One input mode with probability proportional to its weight."""
    names = [m for m in MODES if weights.get(m, 0.0) > 0]
    if len(names) == 1:
        return names[0]
    p = torch.tensor([weights[m] for m in names], dtype=torch.float64)
    return names[int(torch.multinomial(p / p.sum(), 1, generator=g))]
