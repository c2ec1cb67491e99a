"""Selecting and ordering the joints a proprioception encoder was trained with from a JointState.

JointState messages list joints in any order and may carry more of them; the proprio_encoder node
and the offline trainers both pick the encoder's joints with `select_joints`, so a recorded
message and a live one reach the encoder in the same layout.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class JointStateError(ValueError):
    """A JointState that cannot be encoded; `reason` is a short stable key for drop counters."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def select_joints(names: Sequence[str], position, velocity, effort, joint_names: Sequence[str]) -> dict:
    """Raw proprio sample {"position", "velocity"[, "effort"]} (float64, in `joint_names` order).

    Velocity is required; effort is optional (empty), every other field must have one entry per
    name. Raises JointStateError: "malformed_joint_state" (duplicate names, wrong lengths),
    "missing_velocity" or "missing_joint" (names the joints that are absent).
    """
    names = list(names)
    n = len(names)
    if len(set(names)) != n:
        raise JointStateError("malformed_joint_state", f"JointState.name has duplicates: {names}")
    fields = {"position": position, "velocity": velocity, "effort": effort}
    lengths = {field: len(values) for field, values in fields.items()}
    if lengths["velocity"] == 0:
        raise JointStateError("missing_velocity", "JointState.velocity is empty; the encoder needs joint velocities")
    for field, length in lengths.items():
        if length != n and not (field == "effort" and length == 0):  # effort is optional
            raise JointStateError("malformed_joint_state", f"JointState.{field} has {length} entries for {n} names")
    index = {name: i for i, name in enumerate(names)}
    missing = [j for j in joint_names if j not in index]
    if missing:
        raise JointStateError("missing_joint", f"JointState lacks joint(s) {missing}")
    idx = [index[j] for j in joint_names]
    return {field: np.asarray(values, dtype=np.float64)[idx] for field, values in fields.items() if lengths[field]}
