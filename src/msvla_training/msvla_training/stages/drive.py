"""Driving stages of a multi-sensor VLA (control + multi-modal trajectory heads).

drive_fusion: the whole model supervised with the expert's command (steering MSE, throttle and
brake cross-entropy) and its future path (winner-takes-all over the trajectory modes), with
modality dropout in the fusion so the policy learns to drive with any sensor missing.
drive_finetune: the same loss at a lower learning rate and less dropout.
drive_robustness: part of each batch with sensor noise (camera pixels, LiDAR and radar
positions, IMU), part with FGSM perturbations of the camera image, the rest clean.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import Stage, check_fraction, check_non_negative

CONTROL = ("steering", "throttle", "brake")
TRAJECTORY = ("waypoints", "valid")


def model_inputs(batch: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{"camera.image": x, ...} -> {"camera": {"image": x}, ...}"""
    nested: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in batch.items():
        if "." in key:
            modality, name = key.split(".", 1)
            nested.setdefault(modality, {})[name] = value
    return nested


def drive_targets(batch: dict) -> dict[str, dict[str, torch.Tensor]]:
    return {"control": {k: batch[k] for k in CONTROL},
            "trajectory": {"waypoints": batch["waypoints"], "valid": batch["valid"].bool()}}


def drive_loss(model, batch: dict, inputs: dict | None = None, steering_weight: float = 1.0):
    """(loss, parts) of the control and trajectory heads on `batch`; `steering_weight` scales the
    steering term on top of the head's own weighting."""
    outputs = model(model_inputs(batch) if inputs is None else inputs, batch["instruction"])
    losses = model.policy.head.loss(outputs, drive_targets(batch))
    parts = {k: float(v.detach()) for k, v in losses.items() if k != "total"}
    total = losses["total"] + (steering_weight - 1.0) * losses["control.steering"]
    error = (outputs["control.steering"].detach() - batch["steering"]).abs().mean()
    parts["steering_mae_deg"] = float(error) * 57.29578
    return total, parts


@dataclass
class DriveParams:
    modality_dropout: float = 0.15  # per modality and sample, in the fusion (training only)
    # The steering error that matters (a few degrees: half a lane within seconds) is a small
    # normalised MSE next to the pedal cross-entropies and the trajectory ADE in metres; without
    # extra weight the policy learns pedals and paths first and steers by the average.
    steering_weight: float = 20.0

    def __post_init__(self):
        check_fraction(self, "modality_dropout")
        check_non_negative(self, "steering_weight")


class DriveStage(Stage):
    """Base of the driving stages: trains every component; batches carry every cached tensor."""

    components = ()  # set per model: all of its components
    inputs = ()  # every tensor of the data (the model's encoders decide which)
    needs_instruction = True

    def __init__(self, model, params):
        super().__init__(model, params)
        self.components = tuple(model.component_names())
        self._dropout = model.fusion.params.modality_dropout
        model.fusion.params.modality_dropout = params.modality_dropout

    def forward(self, batch, rng):
        return drive_loss(self.model, batch, steering_weight=self.params.steering_weight)

    def close(self) -> None:
        self.model.fusion.params.modality_dropout = self._dropout


class DriveFusion(DriveStage):
    name = "drive_fusion"
    Params = DriveParams


@dataclass
class FinetuneParams(DriveParams):
    modality_dropout: float = 0.05


class DriveFinetune(DriveStage):
    name = "drive_finetune"
    Params = FinetuneParams


@dataclass
class RobustnessParams(DriveParams):
    modality_dropout: float = 0.05
    noisy_fraction: float = 0.25
    adversarial_fraction: float = 0.25
    camera_noise_std: float = 0.05   # in the encoder's normalised image units
    lidar_noise_m: float = 0.03      # on x, y, z of real points
    radar_range_noise_m: float = 0.3
    radar_velocity_noise_mps: float = 0.2
    imu_noise_std: float = 0.05      # in the encoder's scaled units
    fgsm_epsilon: float = 0.03       # L-inf step on the normalised camera image

    def __post_init__(self):
        super().__post_init__()
        check_fraction(self, "noisy_fraction", "adversarial_fraction")
        if self.noisy_fraction + self.adversarial_fraction > 1.0:
            raise ValueError("noisy_fraction + adversarial_fraction must be <= 1")
        check_non_negative(self, "camera_noise_std", "lidar_noise_m", "radar_range_noise_m",
                           "radar_velocity_noise_mps", "imu_noise_std", "fgsm_epsilon")


def _noise(x: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
    return torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * std


class DriveRobustness(DriveStage):
    name = "drive_robustness"
    Params = RobustnessParams

    def _noisy(self, inputs: dict, rows: slice, g: torch.Generator) -> None:
        """Sensor noise on `rows` of the nested inputs, in place (padding stays zero)."""
        p = self.params
        if "camera" in inputs:
            image = inputs["camera"]["image"]
            image[rows] = image[rows] + _noise(image[rows], p.camera_noise_std, g)
        if "lidar" in inputs:
            pts, mask = inputs["lidar"]["points"], inputs["lidar"]["mask"]
            jitter = _noise(pts[rows, :, :3], p.lidar_noise_m, g) * mask[rows, :, None]
            pts[rows, :, :3] = pts[rows, :, :3] + jitter
        if "radar" in inputs:
            t, mask = inputs["radar"]["targets"], inputs["radar"]["mask"]
            t[rows, :, 0] = t[rows, :, 0] + _noise(t[rows, :, 0], p.radar_range_noise_m, g) * mask[rows]
            t[rows, :, 2] = t[rows, :, 2] + _noise(t[rows, :, 2], p.radar_velocity_noise_mps, g) * mask[rows]
        if "imu" in inputs:
            imu = inputs["imu"]["imu"]
            imu[rows] = imu[rows] + _noise(imu[rows], p.imu_noise_std, g)

    def forward(self, batch, rng):
        p = self.params
        b = batch["steering"].shape[0]
        n_noisy = int(round(p.noisy_fraction * b))
        n_adv = int(round(p.adversarial_fraction * b))
        inputs = {m: {k: v.clone() for k, v in d.items()} for m, d in model_inputs(batch).items()}
        self._noisy(inputs, slice(0, n_noisy), rng.local)
        if n_adv and "camera" in inputs:
            adv = slice(n_noisy, n_noisy + n_adv)
            part = {k: (v[adv] if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            sub = {m: {k: v[adv] for k, v in d.items()} for m, d in inputs.items()}
            image = sub["camera"]["image"].detach().requires_grad_(True)
            sub["camera"]["image"] = image
            loss, _ = drive_loss(self.model, part, sub, self.params.steering_weight)
            (grad,) = torch.autograd.grad(loss, image)
            inputs["camera"]["image"][adv] = (image + p.fgsm_epsilon * grad.sign()).detach()
        loss, parts = drive_loss(self.model, batch, inputs, self.params.steering_weight)
        parts["noisy"], parts["adversarial"] = float(n_noisy), float(n_adv)
        return loss, parts


def _present(inputs: dict, mode: str, b: int, device) -> dict | None:
    """Presence masks for a validation mode: "all", or "no_<modality>" (that sensor missing)."""
    if mode == "all":
        return None
    modality = mode.removeprefix("no_")
    if not mode.startswith("no_") or modality not in inputs:
        raise ValueError(f"validation mode {mode!r}: expected 'all' or 'no_<modality>' with one of {sorted(inputs)}")
    return {m: torch.full((b,), m != modality, dtype=torch.bool, device=device) for m in inputs}


@torch.no_grad()
def validate_drive(model, data: dict, instructions: torch.Tensor, runtime, batch_size: int,
                   modes=("all",)) -> dict[str, float]:
    """Per mode: steering MAE (deg), throttle and brake MAE, and the most confident trajectory
    mode's average and final displacement (m) over the recorded waypoints."""
    was_training = model.training
    model.eval()
    n = len(data["texts"])
    keys = [k for k, v in data.items() if isinstance(v, torch.Tensor)]
    out: dict[str, float] = {}
    try:
        for mode in modes:
            sums = dict.fromkeys(("steering", "throttle", "brake", "ade", "fde"), 0.0)
            for start in range(0, n, batch_size):
                sl = slice(start, start + batch_size)
                batch = {k: data[k][sl].to(runtime.device) for k in keys}
                batch = {k: v.float() if v.is_floating_point() else v for k, v in batch.items()}
                inputs = model_inputs(batch)
                b = batch["steering"].shape[0]
                with runtime.autocast():
                    pred = model(inputs, instructions[sl].to(runtime.device),
                                 present=_present(inputs, mode, b, runtime.device))
                for key in CONTROL:
                    sums[key] += float((pred[f"control.{key}"].float() - batch[key]).abs().sum())
                valid = batch["valid"].bool()
                dist = (pred["trajectory.trajectory"].float() - batch["waypoints"]).norm(dim=-1)
                sums["ade"] += float(((dist * valid).sum(1) / valid.sum(1).clamp(min=1)).sum())
                last = (valid.sum(1) - 1).clamp(min=0)
                sums["fde"] += float(dist[torch.arange(b), last].sum())
            prefix = "val_" if mode == "all" else f"val_{mode}_"
            out[prefix + "steering_mae_deg"] = sums["steering"] / n * 57.29578
            out.update({prefix + f"{k}_mae": sums[k] / n for k in ("throttle", "brake")})
            out.update({prefix + f"{k}_m": sums[k] / n for k in ("ade", "fde")})
    finally:
        model.train(was_training)
    return out
