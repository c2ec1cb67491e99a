"""6-DoF grasp heads: one direct regression, or several scored candidates from learned queries.

Grasp frame convention: the rotation's columns are the gripper's x, y, z axes in the robot base
frame, z being the approach direction. Positions are metres in the base frame, width is the
finger opening in metres, quaternions are (x, y, z, w).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from ..registry import HEADS
from .common import (AttentionPool, check_non_negative, check_positive, check_tokens, mlp, relaxed_wta,
                     target)
from .rotation import geodesic_angle, matrix_to_quaternion, quaternion_to_matrix, rotate_about_z, rotation_6d_to_matrix

Box = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass
class GraspParams:
    hidden: int = 128
    max_width: float = 0.08  # metres, fully open fingers (Franka hand)
    # ((x_min, y_min, z_min), (x_max, y_max, z_max)) in metres; None leaves positions unbounded.
    workspace: Box | None = None
    # A parallel-jaw gripper looks the same after a half turn about its approach axis.
    symmetric: bool = True
    position_loss: Literal["l1", "l2"] = "l1"
    position_weight: float = 10.0  # so a 1 cm position error weighs like a 0.1 rad rotation error
    rotation_weight: float = 1.0
    width_weight: float = 1.0
    score_weight: float = 0.5

    def __post_init__(self):
        check_positive(self, "hidden", "max_width")
        check_non_negative(self, "position_weight", "rotation_weight", "width_weight", "score_weight")
        if self.max_width > 0.3:
            raise ValueError(f"max_width={self.max_width} m is not a gripper opening (at most 0.3)")
        if self.position_loss not in ("l1", "l2"):
            raise ValueError(f"position_loss must be 'l1' or 'l2', got {self.position_loss!r}")
        if self.workspace is not None:
            lo, hi = self.workspace
            for axis, a, b in zip("xyz", lo, hi):
                if not (math.isfinite(a) and math.isfinite(b) and a < b):
                    raise ValueError(f"workspace.{axis}: need finite min < max, got [{a}, {b}]")


class GraspPoseDecoder(nn.Module):
    """Features (..., hidden) -> position, rotation (6-D, matrix, quaternion), width, score logit."""

    def __init__(self, params: GraspParams):
        super().__init__()
        self.params = params
        self.out = nn.Linear(params.hidden, 3 + 6 + 1 + 1)
        with torch.no_grad():  # start near the identity rotation, far from the 6-D degeneracy
            self.out.bias[3:9] = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
        if params.workspace is not None:
            self.register_buffer("box_lo", torch.tensor(params.workspace[0]), persistent=False)
            self.register_buffer("box_hi", torch.tensor(params.workspace[1]), persistent=False)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.out(features)
        position = raw[..., :3]
        if self.params.workspace is not None:
            position = self.box_lo + (self.box_hi - self.box_lo) * torch.sigmoid(position)
        d6 = raw[..., 3:9]
        rotation = rotation_6d_to_matrix(d6)
        return {"position": position, "rotation_6d": d6, "rotation": rotation,
                "quaternion": matrix_to_quaternion(rotation),
                "width": self.params.max_width * torch.sigmoid(raw[..., 9]),
                "score_logit": raw[..., 10]}


def grasp_targets(targets: Mapping[str, torch.Tensor], batch: int, like: torch.Tensor,
                  head: str) -> dict[str, torch.Tensor]:
    """Position (B, 3), rotation (B, 3, 3) or quaternion (B, 4, xyzw), width (B,)."""
    out = {"position": target(targets, "position", (batch, 3), head, like),
           "width": target(targets, "width", (batch,), head, like)}
    if "rotation" in targets:
        out["rotation"] = target(targets, "rotation", (batch, 3, 3), head, like)
    elif "quaternion" in targets:
        out["rotation"] = quaternion_to_matrix(target(targets, "quaternion", (batch, 4), head, like))
    else:
        raise KeyError(f"{head}: targets need 'rotation' (B, 3, 3) or 'quaternion' (B, 4); got {sorted(targets)}")
    return out


def pose_errors(pred: Mapping[str, torch.Tensor], tgt: Mapping[str, torch.Tensor],
                params: GraspParams) -> dict[str, torch.Tensor]:
    """Per-grasp errors over the leading axes of pred (targets broadcast against them)."""
    diff = pred["position"] - tgt["position"]
    position = diff.abs().mean(-1) if params.position_loss == "l1" else diff.pow(2).mean(-1)
    rotation = geodesic_angle(pred["rotation"], tgt["rotation"])
    if params.symmetric:
        flipped = geodesic_angle(pred["rotation"], rotate_about_z(tgt["rotation"], math.pi))
        rotation = torch.minimum(rotation, flipped)
    width = (pred["width"] - tgt["width"]).abs() / params.max_width
    total = (params.position_weight * position + params.rotation_weight * rotation
             + params.width_weight * width)
    return {"position": position, "rotation": rotation, "width": width, "pose": total}


@HEADS.register("grasp_direct")
class DirectGraspHead(nn.Module):
    """One grasp regressed from the attention-pooled tokens.

    Outputs: position (B, 3) m, rotation (B, 3, 3), rotation_6d (B, 6), quaternion (B, 4) xyzw,
    width (B,) m in [0, max_width], score (B,) predicted success probability, score_logit (B,).
    Targets: position, rotation or quaternion, width, and optionally score (B,) in [0, 1]
    (success label; default 1, i.e. every demonstration grasp succeeded).
    """

    @dataclass
    class Params(GraspParams):
        pass

    def __init__(self, params: GraspParams, d_model: int):
        super().__init__()
        self.params, self.d_model = params, d_model
        self.pool = AttentionPool(d_model)
        self.body = mlp(d_model, params.hidden, params.hidden)
        self.decode = GraspPoseDecoder(params)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "grasp_direct")
        out = self.decode(F.gelu(self.body(self.pool(tokens))))
        out["score"] = torch.sigmoid(out["score_logit"])
        return out

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        like = outputs["position"]
        tgt = grasp_targets(targets, like.shape[0], like, "grasp_direct")
        errors = pose_errors(outputs, tgt, self.params)
        if "score" in targets:
            label = target(targets, "score", (like.shape[0],), "grasp_direct", like)
        else:
            label = torch.ones_like(outputs["score_logit"])
        score = F.binary_cross_entropy_with_logits(outputs["score_logit"], label)
        losses = {k: v.mean() for k, v in errors.items() if k != "pose"}
        losses["score"] = score
        losses["total"] = errors["pose"].mean() + self.params.score_weight * score
        return losses


@HEADS.register("grasp_sampling")
class SamplingGraspHead(nn.Module):
    """num_candidates grasps from learned queries that cross-attend to the tokens.

    Several hypotheses let the head keep distinct valid grasps (two handles, two sides) instead of
    regressing their average, which is usually not a grasp at all. Training is winner-takes-all:
    the candidate closest to the demonstrated grasp is pulled towards it (the others only by the
    small wta_relax share), and the scores learn (softmax over candidates) which one that is.

    Outputs: candidate_position (B, K, 3), candidate_rotation (B, K, 3, 3), candidate_rotation_6d
    (B, K, 6), candidate_quaternion (B, K, 4), candidate_width (B, K), scores (B, K) summing to 1,
    score_logits (B, K), best_index (B,), and the best candidate as position, rotation,
    rotation_6d, quaternion, width, score (its probability).
    """

    @dataclass
    class Params(GraspParams):
        num_candidates: int = 8
        heads: int = 4
        wta_relax: float = 0.05  # share of the pose loss on the non-winning candidates (0: pure WTA)

        def __post_init__(self):
            super().__post_init__()
            check_positive(self, "num_candidates", "heads")
            if not 0.0 <= self.wta_relax < 1.0:
                raise ValueError(f"wta_relax={self.wta_relax} must lie in [0, 1)")

    def __init__(self, params: Params, d_model: int):
        super().__init__()
        if d_model % params.heads:
            raise ValueError(f"heads={params.heads} must divide d_model={d_model}")
        self.params, self.d_model = params, d_model
        # Unit-scale random queries so candidates start different; equal queries would stay equal.
        self.queries = nn.Parameter(torch.randn(params.num_candidates, d_model))
        self.query_norm = nn.LayerNorm(d_model)
        self.token_norm = nn.LayerNorm(d_model)
        self.attend = nn.MultiheadAttention(d_model, params.heads, batch_first=True)
        self.body = mlp(d_model, params.hidden, params.hidden)
        self.decode = GraspPoseDecoder(params)

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        check_tokens(tokens, self.d_model, "grasp_sampling")
        b = tokens.shape[0]
        q = self.query_norm(self.queries).unsqueeze(0).expand(b, -1, -1)
        kv = self.token_norm(tokens)
        x = q + self.attend(q, kv, kv, need_weights=False)[0]
        cand = self.decode(F.gelu(self.body(x)))
        logits = cand.pop("score_logit")
        scores = torch.softmax(logits, dim=-1)
        best = scores.argmax(dim=-1)
        rows = torch.arange(b, device=tokens.device)
        out = {f"candidate_{k}": v for k, v in cand.items()}
        out.update({k: v[rows, best] for k, v in cand.items()})
        out.update(scores=scores, score_logits=logits, best_index=best, score=scores[rows, best])
        return out

    def loss(self, outputs: Mapping[str, torch.Tensor],
             targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        like = outputs["candidate_position"]
        tgt = grasp_targets(targets, like.shape[0], like, "grasp_sampling")
        pred = {k: outputs[f"candidate_{k}"] for k in ("position", "rotation", "width")}
        errors = pose_errors(pred, {"position": tgt["position"][:, None], "width": tgt["width"][:, None],
                                    "rotation": tgt["rotation"][:, None]}, self.params)
        winner = errors["pose"].detach().argmin(dim=-1)
        pick = winner[:, None]
        # reported terms are the winner's; the optimised pose term also pulls the losers slightly
        losses = {k: v.gather(1, pick).mean() for k, v in errors.items() if k != "pose"}
        losses["score"] = F.cross_entropy(outputs["score_logits"], winner)
        losses["total"] = (relaxed_wta(errors["pose"], winner, self.params.wta_relax)
                           + self.params.score_weight * losses["score"])
        return losses
