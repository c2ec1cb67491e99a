"""Direct vehicle control: steering, throttle and brake for the next control step."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import HEADS
from .common import AttentionPool, check_non_negative, check_positive, check_tokens, mlp, target


@HEADS.register("vehicle_control")
class VehicleControlHead(nn.Module):
    """Steering (B,) in radians within [-max_steering_rad, max_steering_rad] (tanh), throttle and
    brake (B,) in [0, 1] (sigmoid); raw pre-activations as steering_raw, throttle_logit,
    brake_logit.

    The output ranges are hard (saturating activations), so no input, however extreme, can command
    more than the steering limit. A sigmoid is never exactly 0, so a pedal below `pedal_deadband`
    is released (0): otherwise every command would press both pedals a little and the shield, where
    brake wins, would never let the throttle through. Pressing both clearly is *not* prevented
    here: the demonstrations never show it and the head learns to avoid it, but only the safety
    shield downstream guarantees exclusivity (brake wins) and rate limits; nothing here is a safety
    layer.

    Loss: steering MSE on steering / max_steering_rad (so its scale matches the other terms),
    throttle and brake binary cross-entropy against targets in [0, 1] (soft labels allowed).
    """

    @dataclass
    class Params:
        hidden: int = 64
        max_steering_rad: float = 0.5  # road-wheel angle limit
        steering_weight: float = 1.0
        throttle_weight: float = 1.0
        brake_weight: float = 1.0
        pedal_deadband: float = 0.02  # a pedal below this is released

        def __post_init__(self):
            check_positive(self, "hidden", "max_steering_rad")
            check_non_negative(self, "steering_weight", "throttle_weight", "brake_weight", "pedal_deadband")
            if self.pedal_deadband >= 1.0:
                raise ValueError(f"pedal_deadband={self.pedal_deadband} must be below 1")
            if self.max_steering_rad >= math.pi / 2:
                raise ValueError(f"max_steering_rad={self.max_steering_rad} must be below pi/2")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        self.params, self.d_model = params, d_model
        self.pool = AttentionPool(d_model)
        self.body = mlp(d_model, params.hidden, 3)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "vehicle_control")
        raw = self.body(self.pool(tokens))
        steer, throttle, brake = raw.unbind(-1)
        pedals = [torch.sigmoid(x) for x in (throttle, brake)]
        pedals = [p * (p >= self.params.pedal_deadband) for p in pedals]
        return {"steering": self.params.max_steering_rad * torch.tanh(steer),
                "throttle": pedals[0], "brake": pedals[1],
                "steering_raw": steer, "throttle_logit": throttle, "brake_logit": brake}

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        like = outputs["steering"]
        b = like.shape[0]
        limit = self.params.max_steering_rad
        steering = target(targets, "steering", (b,), "vehicle_control", like)
        if (steering.abs() > limit + 1e-6).any():
            raise ValueError(f"vehicle_control: target 'steering' exceeds max_steering_rad={limit}")
        losses = {"steering": F.mse_loss(outputs["steering"] / limit, steering / limit)}
        for key in ("throttle", "brake"):
            value = target(targets, key, (b,), "vehicle_control", like)
            if ((value < 0) | (value > 1)).any():
                raise ValueError(f"vehicle_control: target {key!r} must lie in [0, 1]")
            losses[key] = F.binary_cross_entropy_with_logits(outputs[f"{key}_logit"], value)
        p = self.params
        losses["total"] = (p.steering_weight * losses["steering"] + p.throttle_weight * losses["throttle"]
                           + p.brake_weight * losses["brake"])
        return losses
