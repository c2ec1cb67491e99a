"""Validation of the grasp model on held-out episodes during training.

Per input mode: cell accuracy against the mode's label cell, median position error (cm), median
rotation error (deg, modulo the label's yaw symmetry) and the success rate within 2 cm and 15 deg,
with the error definitions of msvla-eval (offline_metrics), so training curves and evaluation
reports measure the same thing.
"""
from __future__ import annotations

import numpy as np
import torch

from ..offline_metrics import grasp_errors, successes
from .task import mode_labels, model_inputs

PREFIX = {"rgbd": "val_", "rgb": "val_rgb_", "depth": "val_depth_"}


@torch.no_grad()
def validate(model, data: dict, instructions: torch.Tensor, runtime, batch_size: int,
             modes=("rgbd",)) -> dict[str, float]:
    """`instructions` (N, D) are the per-sample instruction embeddings."""
    was_training = model.training
    model.eval()
    n = data["rgb"].shape[0]
    out: dict[str, float] = {}
    try:
        for mode in modes:
            hits, positions, yaws = [], [], []
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                batch = {k: data[k][sl].to(runtime.device).float()
                         for k in ("rgb", "depth", "geometry", "rgb_geometry")}
                batch.update({k: data[k][sl].to(runtime.device) for k in ("cell", "rgb_cell", "yaw", "kind",
                                                                          "width", "dz", "rgb_dz")})
                with runtime.autocast():
                    pred = model(instructions[sl].to(runtime.device), **model_inputs(batch, mode))
                cell = mode_labels(batch, mode)["cell"]
                hits.append((pred.heatmap.flatten(1).argmax(dim=1) == cell).cpu())
                positions.append(pred.position.float().cpu())
                yaws.append(pred.yaw.float().cpu())
            errors = grasp_errors(torch.cat(positions).numpy(), torch.cat(yaws).numpy(), data["target"].numpy(),
                                  data["quaternion"].numpy(), data["kind"].numpy())
            p = PREFIX[mode]
            out[p + "cell_acc"] = float(torch.cat(hits).float().mean())
            out[p + "median_error_cm"] = float(np.median(errors["position_cm"]))
            out[p + "median_rot_error_deg"] = float(np.median(errors["rotation_deg"]))
            out[p + "success"] = float(successes(errors, 2.0, 15.0).mean())
    finally:
        model.train(was_training)
    return out
