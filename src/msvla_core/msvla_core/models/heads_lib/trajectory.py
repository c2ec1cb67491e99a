"""Multi-modal future trajectory of the ego vehicle (waypoints in the base frame)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import HEADS
from .common import AttentionPool, check_non_negative, check_positive, check_tokens, mlp, relaxed_wta, target


def average_displacement(trajectories: torch.Tensor, waypoints: torch.Tensor,
                         valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean L2 distance (metres) per mode: (B, K, T, 2) vs (B, T, 2) -> (B, K).

    valid (B, T) bool marks recorded waypoints; episodes that end early leave the tail unknown,
    and scoring it would teach the head to stop the car there.
    """
    dist = (trajectories - waypoints[:, None]).pow(2).sum(-1).add(1e-12).sqrt()  # eps: finite grad at 0
    if valid is None:
        return dist.mean(-1)
    w = valid[:, None].to(dist.dtype)
    return (dist * w).sum(-1) / w.sum(-1).clamp(min=1.0)


def winner_take_all(trajectories: torch.Tensor, waypoints: torch.Tensor,
                    valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ADE per mode (B, K), index of the closest mode (B,)); the choice carries no gradient."""
    ade = average_displacement(trajectories, waypoints, valid)
    return ade, ade.detach().argmin(dim=-1)


@HEADS.register("trajectory")
class TrajectoryHead(nn.Module):
    """num_modes candidate futures of horizon waypoints each, with confidences.

    One regressed trajectory averages "turn left" and "go straight" into a path through the kerb;
    separate modes trained winner-takes-all keep them apart, and the confidences learn which one
    the demonstration took.

    Outputs: trajectories (B, K, T, 2) x, y in metres (base frame, x forward, y left),
    confidences (B, K) softmax, confidence_logits (B, K), best_mode (B,) most confident,
    trajectory (B, T, 2) the most confident mode.
    Targets: waypoints (B, T, 2) metres; optional valid (B, T) bool.
    Loss: ade (best mode's average displacement, m), confidence (cross-entropy toward the best
    mode), fde (final displacement of the best mode, reported only), total (the ADE term there
    also carries the wta_relax share of the other modes' ADE).
    """

    @dataclass
    class Params:
        num_modes: int = 5
        horizon: int = 20  # waypoints
        hidden: int = 128
        # Raw outputs are in units of scale_m, so an untrained head already spans metres of road.
        scale_m: float = 10.0
        confidence_weight: float = 1.0
        wta_relax: float = 0.05  # share of the loss on the non-winning modes (0: pure WTA)

        def __post_init__(self):
            check_positive(self, "num_modes", "horizon", "hidden", "scale_m")
            check_non_negative(self, "confidence_weight")
            if not 0.0 <= self.wta_relax < 1.0:
                raise ValueError(f"wta_relax={self.wta_relax} must lie in [0, 1)")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        self.params, self.d_model = params, d_model
        self.pool = AttentionPool(d_model)
        self.body = mlp(d_model, params.hidden, params.num_modes * (params.horizon * 2 + 1))

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "trajectory")
        p = self.params
        raw = self.body(self.pool(tokens)).view(-1, p.num_modes, p.horizon * 2 + 1)
        trajectories = p.scale_m * raw[..., 1:].reshape(-1, p.num_modes, p.horizon, 2)
        logits = raw[..., 0]
        confidences = torch.softmax(logits, dim=-1)
        best = confidences.argmax(dim=-1)
        rows = torch.arange(raw.shape[0], device=raw.device)
        return {"trajectories": trajectories, "confidences": confidences, "confidence_logits": logits,
                "best_mode": best, "trajectory": trajectories[rows, best]}

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = outputs["trajectories"]
        b, _, t, _ = pred.shape
        waypoints = target(targets, "waypoints", (b, t, 2), "trajectory", pred)
        valid = None
        if targets.get("valid") is not None:
            valid = torch.as_tensor(targets["valid"], device=pred.device)
            if valid.shape != (b, t):
                raise ValueError(f"trajectory: target 'valid' must have shape ({b}, {t}), got {tuple(valid.shape)}")
            valid = valid.bool()
        ade, winner = winner_take_all(pred, waypoints, valid)
        rows = torch.arange(b, device=pred.device)
        end = torch.full((b,), t - 1, device=pred.device)
        if valid is not None:  # final displacement at the last recorded waypoint
            end = t - 1 - valid.flip(-1).int().argmax(-1)
        last = pred[rows, winner, end] - waypoints[rows, end]
        losses = {"ade": ade[rows, winner].mean(),
                  "confidence": F.cross_entropy(outputs["confidence_logits"], winner),
                  "fde": last.detach().norm(dim=-1).mean()}
        losses["total"] = (relaxed_wta(ade, winner, self.params.wta_relax)
                           + self.params.confidence_weight * losses["confidence"])
        return losses
