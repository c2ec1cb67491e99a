"""Safety logic for grasp targets: a proposal passes unchanged or is rejected with reasons.

Grasp targets are never clamped: moving a target to the workspace edge would grasp something the
model did not choose. A rejected proposal produces no command at all, and in the safe state nothing
passes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .checks import ProposalChecks, ProposalLimits, require_finite, require_positive
from .supervisor import NS, ShieldState, Supervisor, WatchdogLimits


@dataclass
class GraspLimits:
    workspace_min: tuple[float, float, float] = (0.25, -0.35, 0.0)  # metres, robot base frame
    workspace_max: tuple[float, float, float] = (0.80, 0.35, 0.45)
    table_z: float = 0.0              # table surface height in the base frame
    table_clearance_m: float = 0.005  # the grasp point stays at least this far above the table
    approach_direction: tuple[float, float, float] = (0.0, 0.0, -1.0)  # preferred approach (+z of the grasp frame)
    approach_cone_deg: float = 45.0   # allowed angle between the grasp's approach and approach_direction
    min_width_m: float = 0.0
    max_width_m: float = 0.08
    min_score: float = 0.0
    max_jump_m: float = 0.15          # between consecutive accepted targets for one instruction
    jump_memory_s: float = 2.0        # a target older than this no longer limits the next one
    max_update_rate_hz: float = 20.0  # accepted targets per second, at most
    keepout_boxes: list[tuple[tuple[float, float, float], tuple[float, float, float]]] = field(default_factory=list)
    proposal: ProposalLimits = field(default_factory=lambda: ProposalLimits(frame_id="panda_link0"))

    def __post_init__(self):
        _check_box("workspace", self.workspace_min, self.workspace_max)
        for i, (lo, hi) in enumerate(self.keepout_boxes):
            _check_box(f"keepout_boxes[{i}]", lo, hi)
        require_finite(table_z=self.table_z)
        require_positive(approach_cone_deg=self.approach_cone_deg, max_jump_m=self.max_jump_m,
                  jump_memory_s=self.jump_memory_s, max_update_rate_hz=self.max_update_rate_hz)
        require_finite(table_clearance_m=self.table_clearance_m)
        if self.table_clearance_m < 0.0:
            raise ValueError(f"table_clearance={self.table_clearance_m} must be >= 0 m")
        if self.approach_cone_deg > 180.0:
            raise ValueError(f"approach_cone_deg={self.approach_cone_deg} must be at most 180")
        if len(self.approach_direction) != 3 or not all(math.isfinite(v) for v in self.approach_direction) \
                or math.hypot(*self.approach_direction) < 1e-6:
            raise ValueError(f"approach_direction={list(self.approach_direction)} must be a finite non-zero 3-vector")
        if not (0.0 <= self.min_width_m < self.max_width_m and math.isfinite(self.max_width_m)):
            raise ValueError(f"need 0 <= min_width < max_width, got min_width={self.min_width_m}, "
                             f"max_width={self.max_width_m}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score={self.min_score} must lie in [0, 1]")


def _check_box(name, lo, hi):
    if len(lo) != 3 or len(hi) != 3:
        raise ValueError(f"{name}: min and max need three values (x, y, z), got {list(lo)}, {list(hi)}")
    for axis, a, b in zip("xyz", lo, hi):
        if not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise ValueError(f"{name}_min.{axis}={a} must be finite and below {name}_max.{axis}={b}")


@dataclass
class GraspProposal:
    stamp_ns: int
    frame_id: str
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]  # x, y, z, w
    width: float
    score: float
    model_id: str = ""
    instruction: str = ""


@dataclass
class Decision:
    accepted: bool
    interventions: list[tuple[str, str]] = field(default_factory=list)  # (code, reason)


def approach_axis(q) -> tuple[float, float, float]:
    """+z of the grasp frame in the base frame, for a unit quaternion (x, y, z, w)."""
    x, y, z, w = q
    return 2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)


class GraspShield:
    def __init__(self, limits: GraspLimits, watchdog: WatchdogLimits | None = None):
        self.limits = limits
        self.supervisor = Supervisor(watchdog or WatchdogLimits())
        self.checks = ProposalChecks(limits.proposal)
        d = limits.approach_direction
        n = math.sqrt(sum(v * v for v in d))
        self._approach = tuple(v / n for v in d)
        self._cos_cone = math.cos(math.radians(limits.approach_cone_deg))
        self._last: GraspProposal | None = None   # last accepted target
        self._last_steady_ns: int | None = None
        self.passed = 0
        self.rejected = 0
        self.last_interventions: list[tuple[str, str]] = []

    @property
    def counts(self):
        return self.supervisor.counts

    def check(self, p: GraspProposal, now_ns: int, steady_ns: int | None = None) -> Decision:
        """Decide on one proposal. `now_ns` is the ROS clock, `steady_ns` a monotonic one (defaults
        to `now_ns` for callers without a separate clock)."""
        steady_ns = now_ns if steady_ns is None else steady_ns
        sup = self.supervisor
        sup.proposal_received(steady_ns)
        problems = list(self._problems(p, now_ns, steady_ns))
        sup.record(problems)
        if not sup.commands_allowed:
            problems = [(code, f"shield in {sup.state.name}: {reason}") for code, reason in sup.active()] + problems
        self.last_interventions = problems
        if problems:
            self.rejected += 1
            return Decision(False, problems)
        self.checks.accepted(p.stamp_ns)
        self._last, self._last_steady_ns = p, steady_ns
        self.passed += 1
        return Decision(True)

    def tick(self, now_ns: int, steady_ns: int) -> ShieldState:
        self.supervisor.tick(steady_ns, now_ns)
        return self.supervisor.state

    def reset(self, steady_ns: int) -> tuple[bool, str]:
        ok, message = self.supervisor.reset(steady_ns)
        if ok:  # targets and stamps from before the fault say nothing about what comes next
            self.checks.last_stamp_ns = None
            self._last = self._last_steady_ns = None
            self.last_interventions = []
        return ok, message

    def _problems(self, p: GraspProposal, now_ns: int, steady_ns: int):
        lim = self.limits
        fields = {"position.x": p.position[0], "position.y": p.position[1], "position.z": p.position[2],
                  "orientation.x": p.orientation[0], "orientation.y": p.orientation[1],
                  "orientation.z": p.orientation[2], "orientation.w": p.orientation[3],
                  "width": p.width, "score": p.score}
        envelope = list(self.checks.problems(fields, p.stamp_ns, p.frame_id, p.model_id, now_ns))
        yield from envelope
        if any(code == "non_finite" for code, _ in envelope):
            return  # geometry of non-finite values means nothing
        for i, axis in enumerate("xyz"):
            v = p.position[i]
            if not lim.workspace_min[i] <= v <= lim.workspace_max[i]:
                yield "outside_workspace", (f"position.{axis}={v:.3f} m outside the workspace "
                                            f"[{lim.workspace_min[i]}, {lim.workspace_max[i]}] m")
        if p.position[2] < lim.table_z + lim.table_clearance_m:
            yield "table_clearance", (f"position.z={p.position[2]:.4f} m is less than {lim.table_clearance_m} m "
                                      f"above the table (z={lim.table_z} m)")
        for i, (lo, hi) in enumerate(lim.keepout_boxes):
            if all(lo[k] <= p.position[k] <= hi[k] for k in range(3)):
                yield "in_keepout", f"position {_fmt(p.position)} m is inside keep-out box {i} {list(lo)}-{list(hi)}"
        norm = math.sqrt(sum(c * c for c in p.orientation))
        if abs(norm - 1.0) > 1e-3:
            yield "bad_orientation", f"orientation quaternion norm {norm:.4f} is not 1"
        else:
            axis = approach_axis(tuple(c / norm for c in p.orientation))
            cos = sum(a * b for a, b in zip(axis, self._approach))
            if cos < self._cos_cone:
                angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
                yield "approach_cone", (f"approach direction {_fmt(axis)} is {angle:.1f} deg from "
                                        f"{list(lim.approach_direction)} (limit {lim.approach_cone_deg} deg)")
        if not lim.min_width_m <= p.width <= lim.max_width_m:
            yield "width_out_of_range", f"width={p.width:.4f} m outside [{lim.min_width_m}, {lim.max_width_m}] m"
        if p.score < lim.min_score:
            yield "low_score", f"score={p.score:.3f} below min_score={lim.min_score}"
        last = self._last
        if last is not None:
            since_s = (steady_ns - self._last_steady_ns) / NS
            if since_s < 1.0 / lim.max_update_rate_hz:
                yield "rate_limited", (f"{since_s * 1e3:.1f} ms after the last accepted target "
                                       f"(max_update_rate {lim.max_update_rate_hz:g} Hz)")
            if since_s <= lim.jump_memory_s and p.instruction == last.instruction:
                jump = math.dist(p.position, last.position)
                if jump > lim.max_jump_m:
                    yield "target_jump", (f"position moved {jump:.3f} m from the last accepted target "
                                          f"{since_s:.2f} s ago (max_jump {lim.max_jump_m} m)")


def _fmt(v) -> str:
    return "(" + ", ".join(f"{c:.3f}" for c in v) + ")"
