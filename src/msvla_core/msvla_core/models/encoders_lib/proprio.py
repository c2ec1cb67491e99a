"""Proprioception encoder (modality "proprio"): joint state and recent actions -> tokens.

Raw sample: dict {"position": (J,), "velocity": (J,), "effort": (J,) optional,
"action_history": (k, A) optional, oldest first}. Preprocessed:
- "state" (S,): standardised [position, velocity, effort], plus an effort-present flag when
  `use_effort` (S = 3J + 1), else [position, velocity] (S = 2J);
- "actions" (K, A): the K most recent actions, left-padded with zeros;
- "actions_mask" (K,): 1 where an action is real.
Actions are taken as given: they are fed back in the units the action head emits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..registry import ENCODERS, ModalityEncoder

FIELDS = ("position", "velocity", "effort", "action_history")


@ENCODERS.register("proprio_mlp")
class ProprioMlpEncoder(ModalityEncoder):
    """MLP over the state -> 1 token; shared MLP over each past action -> K tokens (with a learned
    history-slot embedding; missing actions use a learned placeholder). Output (B, 1 + K, D)."""

    modality = "proprio"

    @dataclass
    class Params:
        joints: int = 9  # Panda: 7 arm joints + 2 fingers
        action_dim: int = 7
        history: int = 4  # past actions kept (0 = state token only)
        use_effort: bool = True
        # Per entry of [position, velocity, effort] (effort only with use_effort). None picks
        # scales for a Panda: 1 rad (or m), 2 rad/s, 20 Nm, so all inputs are of order one.
        state_mean: list[float] | None = None
        state_std: list[float] | None = None
        hidden: int = 64

        def __post_init__(self):
            for name in ("joints", "action_dim", "hidden"):
                if getattr(self, name) < 1:
                    raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
            if self.history < 0:
                raise ValueError(f"history must be >= 0, got {self.history}")
            blocks = [1.0, 2.0, 20.0] if self.use_effort else [1.0, 2.0]
            n = self.joints * len(blocks)
            if self.state_mean is None:
                self.state_mean = [0.0] * n
            if self.state_std is None:
                self.state_std = [s for s in blocks for _ in range(self.joints)]
            for name in ("state_mean", "state_std"):
                values = getattr(self, name)
                if len(values) != n:
                    raise ValueError(f"{name} must have {n} entries (joints x "
                                     f"{len(blocks)} blocks), got {len(values)}")
                if not all(math.isfinite(v) for v in values):
                    raise ValueError(f"{name} must be finite")
            if min(self.state_std) <= 0:
                raise ValueError(f"state_std entries must be > 0, got min {min(self.state_std)}")

        @property
        def state_size(self) -> int:
            return 3 * self.joints + 1 if self.use_effort else 2 * self.joints

    def __init__(self, params: Params, d_model: int):
        if d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {d_model}")
        super().__init__(params, d_model)
        self._mean = np.asarray(params.state_mean, dtype=np.float64)
        self._std = np.asarray(params.state_std, dtype=np.float64)
        h = params.hidden
        self.state_net = nn.Sequential(nn.Linear(params.state_size, h), nn.GELU(),
                                       nn.Linear(h, h), nn.GELU(), nn.Linear(h, d_model))
        self.action_net = nn.Sequential(nn.Linear(params.action_dim, h), nn.GELU(),
                                        nn.Linear(h, d_model))
        self.slot = nn.Parameter(torch.randn(params.history, d_model) * 0.02)
        self.no_action = nn.Parameter(torch.randn(d_model) * 0.02)

    def _field(self, raw: dict, name: str, shape: tuple[int, ...] | None) -> np.ndarray:
        data = np.asarray(raw[name])
        if not np.issubdtype(data.dtype, np.number) or np.iscomplexobj(data):
            raise ValueError(f"proprio: field {name!r} must hold real numbers, got dtype "
                             f"{data.dtype}")
        if shape is not None and data.shape != shape:
            raise ValueError(f"proprio: field {name!r} must have shape {shape}, got {data.shape}")
        data = data.astype(np.float64)
        if not np.isfinite(data).all():
            raise ValueError(f"proprio: field {name!r} contains NaN or inf")
        return data

    def preprocess(self, raw) -> dict[str, np.ndarray]:
        p = self.params
        if not isinstance(raw, dict):
            raise ValueError(f"proprio: expected a dict with keys {', '.join(FIELDS)}, got "
                             f"{type(raw).__name__}")
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise ValueError(f"proprio: unknown field(s) {unknown}; expected {', '.join(FIELDS)}")
        for name in ("position", "velocity"):
            if raw.get(name) is None:
                raise ValueError(f"proprio: field {name!r} is required")
        joint = (p.joints,)
        parts = [self._field(raw, "position", joint), self._field(raw, "velocity", joint)]
        has_effort = raw.get("effort") is not None
        # Validate a supplied effort even when unused, so bad data never passes silently.
        effort = self._field(raw, "effort", joint) if has_effort else np.zeros(p.joints)
        if p.use_effort:
            parts.append(effort)
        state = (np.concatenate(parts) - self._mean) / self._std
        if p.use_effort:
            state = np.append(state, float(has_effort))

        actions = np.zeros((p.history, p.action_dim))
        mask = np.zeros(p.history)
        if raw.get("action_history") is not None:
            history = self._field(raw, "action_history", None)
            if history.ndim != 2 or history.shape[1] != p.action_dim:
                raise ValueError(f"proprio: field 'action_history' must have shape (k, "
                                 f"{p.action_dim}), got {history.shape}")
            k = min(len(history), p.history)
            if k:
                actions[p.history - k:] = history[len(history) - k:]
                mask[p.history - k:] = 1.0
        return {"state": state.astype(np.float32), "actions": actions.astype(np.float32),
                "actions_mask": mask.astype(np.float32)}

    def forward(self, state: torch.Tensor, actions: torch.Tensor,
                actions_mask: torch.Tensor | None = None) -> torch.Tensor:
        p = self.params
        if state.ndim != 2 or state.shape[1] != p.state_size:
            raise ValueError(f"state: expected shape (B, {p.state_size}), got "
                             f"{tuple(state.shape)}")
        b = state.shape[0]
        if tuple(actions.shape) != (b, p.history, p.action_dim):
            raise ValueError(f"actions: expected shape ({b}, {p.history}, {p.action_dim}), got "
                             f"{tuple(actions.shape)}")
        if actions_mask is None:
            actions_mask = actions.new_ones(b, p.history)
        elif tuple(actions_mask.shape) != (b, p.history):
            raise ValueError(f"actions_mask: expected shape ({b}, {p.history}), got "
                             f"{tuple(actions_mask.shape)}")
        state_token = self.state_net(state).unsqueeze(1)
        present = actions_mask.to(state.dtype).unsqueeze(-1)
        action_tokens = present * self.action_net(actions) + (1 - present) * self.no_action
        return torch.cat([state_token, action_tokens + self.slot], dim=1)
