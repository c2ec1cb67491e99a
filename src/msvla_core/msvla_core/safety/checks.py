"""Checks every proposal gets in both modes: finite fields, frame, checkpoint, timestamps."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .supervisor import NS


def require_finite(**values):
    """ValueError naming the first limit that is not finite."""
    for name, v in values.items():
        if not math.isfinite(v):
            raise ValueError(f"{name}={v} must be finite")


def require_positive(**values):
    """ValueError naming the first limit that is not finite and > 0."""
    for name, v in values.items():
        if not (math.isfinite(v) and v > 0.0):
            raise ValueError(f"{name}={v} must be finite and > 0")


@dataclass
class ProposalLimits:
    frame_id: str
    max_age_s: float = 0.5           # older sensor stamps are stale
    future_tolerance_s: float = 0.05  # clock skew allowed for stamps ahead of the shield's clock
    expected_model_id: str = ""      # empty: accept any checkpoint

    def __post_init__(self):
        if not (math.isfinite(self.max_age_s) and self.max_age_s > 0.0):
            raise ValueError(f"max_age={self.max_age_s} must be finite and > 0 s")
        if not (math.isfinite(self.future_tolerance_s) and self.future_tolerance_s >= 0.0):
            raise ValueError(f"future_tolerance={self.future_tolerance_s} must be finite and >= 0 s")
        if not self.frame_id:
            raise ValueError("the required frame_id of proposals is empty")


class ProposalChecks:
    """Yields (code, reason) for whatever is wrong with a proposal's envelope. Out-of-order is judged
    against the last *accepted* stamp, which the caller reports through `accepted()`."""

    def __init__(self, limits: ProposalLimits):
        self.limits = limits
        self.last_stamp_ns: int | None = None

    def problems(self, fields: dict[str, float], stamp_ns: int, frame_id: str, model_id: str, now_ns: int):
        bad = [f"{k}={v}" for k, v in fields.items() if not math.isfinite(v)]
        if bad:
            yield "non_finite", "non-finite values: " + ", ".join(bad)
        lim = self.limits
        if frame_id != lim.frame_id:
            yield "wrong_frame", f"header.frame_id={frame_id!r}, expected {lim.frame_id!r}"
        if lim.expected_model_id and model_id != lim.expected_model_id:
            yield "wrong_model", f"model_id={model_id!r}, expected {lim.expected_model_id!r}"
        age_s = (now_ns - stamp_ns) / NS
        if age_s > lim.max_age_s:
            yield "stale", f"header.stamp is {age_s:.3f} s old (limit {lim.max_age_s} s)"
        elif -age_s > lim.future_tolerance_s:
            yield "future_stamp", f"header.stamp is {-age_s:.3f} s in the future (tolerance {lim.future_tolerance_s} s)"
        if self.last_stamp_ns is not None and stamp_ns < self.last_stamp_ns:
            yield "out_of_order", (f"header.stamp is {(self.last_stamp_ns - stamp_ns) / NS:.3f} s older than "
                                   "the last accepted proposal")

    def accepted(self, stamp_ns: int) -> None:
        self.last_stamp_ns = stamp_ns
