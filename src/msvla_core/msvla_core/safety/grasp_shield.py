"""Safety logic for grasp targets: a proposal passes unchanged or is rejected with reasons.

Grasp targets are never clamped: moving a target to the workspace edge would grasp something the
model did not choose. A rejected proposal produces no command at all.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class GraspLimits:
    workspace_min: tuple[float, float, float] = (0.25, -0.35, 0.0)  # metres, robot base frame
    workspace_max: tuple[float, float, float] = (0.80, 0.35, 0.45)
    min_width_m: float = 0.0
    max_width_m: float = 0.08
    min_score: float = 0.0
    max_age_s: float = 0.5  # proposals whose sensor stamp is older than this are stale
    future_tolerance_s: float = 0.05  # clock skew allowed for stamps ahead of the shield's clock
    frame_id: str = "panda_link0"
    expected_model_id: str = ""  # empty: accept any checkpoint

    def __post_init__(self):
        if len(self.workspace_min) != 3 or len(self.workspace_max) != 3:
            raise ValueError("workspace_min and workspace_max need three values (x, y, z)")
        for axis, lo, hi in zip("xyz", self.workspace_min, self.workspace_max):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"workspace_min.{axis}={lo} must be finite and below workspace_max.{axis}={hi}")
        if not 0.0 <= self.min_width_m < self.max_width_m:
            raise ValueError(f"need 0 <= min_width_m < max_width_m, got {self.min_width_m}, {self.max_width_m}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score={self.min_score} must lie in [0, 1]")
        if not self.max_age_s > 0.0 or self.future_tolerance_s < 0.0:
            raise ValueError("max_age_s must be > 0 and future_tolerance_s >= 0")


@dataclass
class GraspProposal:
    stamp_ns: int
    frame_id: str
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]  # x, y, z, w
    width: float
    score: float
    model_id: str = ""


@dataclass
class Decision:
    accepted: bool
    interventions: list[tuple[str, str]] = field(default_factory=list)  # (code, reason)


class GraspShield:
    def __init__(self, limits: GraspLimits):
        self.limits = limits
        self.counts: Counter[str] = Counter()
        self.passed = 0
        self.rejected = 0
        self._last_stamp_ns: int | None = None

    def check(self, p: GraspProposal, now_ns: int) -> Decision:
        problems = list(self._problems(p, now_ns))
        if problems:
            self.rejected += 1
            self.counts.update(code for code, _ in problems)
            return Decision(False, problems)
        self._last_stamp_ns = p.stamp_ns
        self.passed += 1
        return Decision(True)

    def _problems(self, p: GraspProposal, now_ns: int):
        lim = self.limits
        fields = {"position.x": p.position[0], "position.y": p.position[1], "position.z": p.position[2],
                  "orientation.x": p.orientation[0], "orientation.y": p.orientation[1],
                  "orientation.z": p.orientation[2], "orientation.w": p.orientation[3],
                  "width": p.width, "score": p.score}
        bad = [f"{k}={v}" for k, v in fields.items() if not math.isfinite(v)]
        if bad:
            yield "non_finite", "non-finite values: " + ", ".join(bad)
            return
        if p.frame_id != lim.frame_id:
            yield "wrong_frame", f"header.frame_id={p.frame_id!r}, expected {lim.frame_id!r}"
        if lim.expected_model_id and p.model_id != lim.expected_model_id:
            yield "wrong_model", f"model_id={p.model_id!r}, expected {lim.expected_model_id!r}"
        age_s = (now_ns - p.stamp_ns) * 1e-9
        if age_s > lim.max_age_s:
            yield "stale", f"header.stamp is {age_s:.3f} s old (limit {lim.max_age_s} s)"
        elif -age_s > lim.future_tolerance_s:
            yield "future_stamp", f"header.stamp is {-age_s:.3f} s in the future (tolerance {lim.future_tolerance_s} s)"
        if self._last_stamp_ns is not None and p.stamp_ns < self._last_stamp_ns:
            yield "out_of_order", f"header.stamp older than the last accepted proposal by {(self._last_stamp_ns - p.stamp_ns) * 1e-9:.3f} s"
        for i, axis in enumerate("xyz"):
            v = p.position[i]
            if not lim.workspace_min[i] <= v <= lim.workspace_max[i]:
                yield "outside_workspace", (f"position.{axis}={v:.3f} m outside the workspace "
                                            f"[{lim.workspace_min[i]}, {lim.workspace_max[i]}] m")
        norm = math.sqrt(sum(c * c for c in p.orientation))
        if abs(norm - 1.0) > 1e-3:
            yield "bad_orientation", f"orientation quaternion norm {norm:.4f} is not 1"
        if not lim.min_width_m <= p.width <= lim.max_width_m:
            yield "width_out_of_range", f"width={p.width:.4f} m outside [{lim.min_width_m}, {lim.max_width_m}] m"
        if p.score < lim.min_score:
            yield "low_score", f"score={p.score:.3f} below min_score={lim.min_score}"
