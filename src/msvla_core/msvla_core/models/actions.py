"""Actions read from a policy's outputs, whichever head produced them (one batch element)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import top_down_grasp_quaternion
from .heads import GraspPrediction


@dataclass
class GraspAction:
    position: np.ndarray  # (3,) metres, robot base frame
    quaternion: np.ndarray  # (4,) x, y, z, w of the grasp frame (+z = approach)
    width: float  # metres
    score: float  # [0, 1]


@dataclass
class VehicleAction:
    steering: float  # rad, positive left
    throttle: float  # [0, 1]
    brake: float  # [0, 1]


class NoAction(ValueError):
    """The policy produced no usable action for this input (the reason says why)."""


def _pick(outputs: dict[str, torch.Tensor], name: str) -> torch.Tensor | None:
    """An output by name, also when a multi_head prefixed it ("control.steering")."""
    if name in outputs:
        return outputs[name]
    matches = [k for k in outputs if k.endswith(f".{name}") and not k.split(".")[-2].startswith("candidate")]
    return outputs[matches[0]] if len(matches) == 1 else None


def action_from_outputs(outputs, index: int = 0) -> GraspAction | VehicleAction:
    if isinstance(outputs, GraspPrediction):
        if not bool(outputs.localised[index]):
            raise NoAction("no feature cell has valid depth: cannot place a grasp")
        return GraspAction(position=outputs.position[index].double().numpy(),
                           quaternion=top_down_grasp_quaternion(float(outputs.yaw[index])),
                           width=float(outputs.width[index]), score=float(outputs.score[index]))
    steering = _pick(outputs, "steering")
    if steering is not None:
        return VehicleAction(steering=float(steering[index]), throttle=float(_pick(outputs, "throttle")[index]),
                             brake=float(_pick(outputs, "brake")[index]))
    position, quaternion = _pick(outputs, "position"), _pick(outputs, "quaternion")
    if position is not None and quaternion is not None:
        q = quaternion[index].double().numpy()
        return GraspAction(position=position[index].double().numpy(), quaternion=q / max(np.linalg.norm(q), 1e-12),
                           width=float(_pick(outputs, "width")[index]), score=float(_pick(outputs, "score")[index]))
    raise NoAction(f"the head's outputs {sorted(outputs)} hold neither a grasp nor a vehicle command")


def is_finite(action: GraspAction | VehicleAction) -> bool:
    values = (list(action.position) + list(action.quaternion) + [action.width, action.score]
              if isinstance(action, GraspAction) else [action.steering, action.throttle, action.brake])
    return all(math.isfinite(float(v)) for v in values)


def heatmap_mono8(outputs, index: int = 0) -> np.ndarray | None:
    """The grasp head's per-cell probabilities as an (h, w) uint8 image scaled to its maximum
    (where the model looks for the named object), or None for heads without a heat-map."""
    if not isinstance(outputs, GraspPrediction):
        return None
    probs = outputs.heatmap[index].detach().float().exp().numpy()
    peak = float(probs.max())
    if not math.isfinite(peak) or peak <= 0.0:
        return np.zeros(probs.shape, dtype=np.uint8)
    return np.clip(np.nan_to_num(probs / peak) * 255.0, 0, 255).astype(np.uint8)
