"""The shield's state machine: input heartbeats, faults that latch a safe state, the emergency stop.

Times come in two kinds. `steady_ns` is a monotonic clock (receipt times, heartbeat timeouts), so a
jump of the ROS clock cannot hide a dead input; `ros_ns` is the node's ROS clock (wall or
simulation time), which message stamps are compared against. Comparing the two each tick is how a
clock jump is seen.

States (values equal SafetyStatus.STATE_*):
- OK / INTERVENING: commands may pass (INTERVENING: the last one was limited or rejected).
- SAFE_STOP: an input is unhealthy or a fault latched; nothing the model proposes passes.
- EMERGENCY: an emergency stop latched.
Before every input has been seen healthy once the shield is in SAFE_STOP ("waiting_for_inputs"),
which clears by itself; after that, every fault and emergency stop latches until `reset()`, which
succeeds only while all inputs are healthy.
"""
from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import IntEnum

NS = 1_000_000_000

# Interventions that mean something is broken rather than one proposal being unacceptable: they
# latch the safe state until an explicit reset.
FAULT_CODES = frozenset({"non_finite", "wrong_model", "proposal_flood", "clock_jump", "heartbeat_timeout",
                         "input_fault"})


class ShieldState(IntEnum):
    OK = 0
    INTERVENING = 1
    SAFE_STOP = 2
    EMERGENCY = 3


@dataclass
class WatchdogLimits:
    heartbeat_timeouts_s: dict[str, float] = field(default_factory=dict)  # input name -> timeout
    expected_model_id: str = ""      # checked against heartbeats that carry a model id; empty: any
    max_proposal_rate_hz: float = 100.0
    flood_window_s: float = 0.5
    max_clock_jump_s: float = 0.5    # ROS time may run ahead of steady time by at most this per tick
    max_clock_backstep_s: float = 0.001  # ... and go backwards by at most this

    def __post_init__(self):
        for name, timeout in self.heartbeat_timeouts_s.items():
            if not (math.isfinite(timeout) and timeout > 0.0):
                raise ValueError(f"heartbeat timeout of input {name!r} must be finite and > 0 s, got {timeout}")
        for name in ("max_proposal_rate_hz", "flood_window_s", "max_clock_jump_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name}={value} must be finite and > 0")
        if not (math.isfinite(self.max_clock_backstep_s) and self.max_clock_backstep_s >= 0.0):
            raise ValueError(f"max_clock_backstep_s={self.max_clock_backstep_s} must be finite and >= 0")


@dataclass
class _Input:
    last_ns: int | None = None
    level_ok: bool = True
    message: str = ""
    model_id: str = ""


class Supervisor:
    def __init__(self, limits: WatchdogLimits):
        self.limits = limits
        self._inputs = {name: _Input() for name in limits.heartbeat_timeouts_s}
        self._armed = False           # every input seen healthy once
        self._latched: dict[str, str] = {}   # fault code -> reason (first occurrence)
        self._emergency: str | None = None
        self._proposal_times: deque[int] = deque()
        self._clock: tuple[int, int] | None = None   # (steady_ns, ros_ns) of the last tick
        self._clock_problem: str | None = None
        self.counts: Counter[str] = Counter()         # interventions by code, since start

    # ---- inputs ---------------------------------------------------------------------------
    def heartbeat(self, name: str, steady_ns: int, ok: bool = True, message: str = "",
                  model_id: str = "") -> None:
        """Input `name` is alive; `ok=False` means it reports a fault (message says which)."""
        inp = self._inputs.get(name)
        if inp is None:
            raise KeyError(f"{name!r} is not a watched input ({sorted(self._inputs)})")
        inp.last_ns, inp.level_ok, inp.message, inp.model_id = steady_ns, ok, message, model_id
        if not ok:
            self.fault("input_fault", f"{name}: {message or 'reports a fault'}")
        elif self.limits.expected_model_id and model_id and model_id != self.limits.expected_model_id:
            self.fault("wrong_model", f"{name} runs checkpoint {model_id!r}, expected "
                                      f"{self.limits.expected_model_id!r}")

    def proposal_received(self, steady_ns: int) -> None:
        """Count a proposal for flood detection (before any other check, so rejected ones count)."""
        times = self._proposal_times
        times.append(steady_ns)
        window = int(self.limits.flood_window_s * NS)
        while times and times[0] <= steady_ns - window:
            times.popleft()
        rate = len(times) / self.limits.flood_window_s
        if rate > self.limits.max_proposal_rate_hz:
            self.fault("proposal_flood", f"{len(times)} proposals in {self.limits.flood_window_s} s "
                                         f"({rate:.0f} Hz, limit {self.limits.max_proposal_rate_hz:g} Hz)")

    def record(self, interventions) -> None:
        """Count per-proposal interventions; fault codes among them latch the safe state."""
        for code, reason in interventions:
            if code in FAULT_CODES:
                self.fault(code, reason)
            else:
                self.counts[code] += 1

    def fault(self, code: str, reason: str) -> None:
        self.counts[code] += 1
        if self._armed and code not in self._latched:
            self._latched[code] = reason

    def emergency_stop(self, reason: str) -> None:
        self.counts["emergency_stop"] += 1
        if self._emergency is None:
            self._emergency = reason

    # ---- periodic ------------------------------------------------------------------------
    def tick(self, steady_ns: int, ros_ns: int) -> None:
        """Once per control period: heartbeat timeouts and the clock-jump check."""
        self._clock_problem = None
        if self._clock is not None:
            d_steady = (steady_ns - self._clock[0]) / NS
            d_ros = (ros_ns - self._clock[1]) / NS
            if d_ros < -self.limits.max_clock_backstep_s:
                self._clock_problem = f"ROS time went back by {-d_ros:.3f} s"
            elif d_ros - d_steady > self.limits.max_clock_jump_s:
                self._clock_problem = (f"ROS time jumped ahead by {d_ros:.3f} s in {d_steady:.3f} s of "
                                       f"steady time (limit {self.limits.max_clock_jump_s} s)")
        self._clock = (steady_ns, ros_ns)
        if self._clock_problem:
            self.fault("clock_jump", self._clock_problem)
        problems = self.input_problems(steady_ns)
        for text in problems:
            self.fault("heartbeat_timeout", text)
        if not self._armed and not problems and not self._clock_problem:
            self._armed = True

    def input_problems(self, steady_ns: int) -> list[str]:
        out = []
        for name, inp in self._inputs.items():
            timeout = self.limits.heartbeat_timeouts_s[name]
            if inp.last_ns is None:
                out.append(f"no heartbeat yet from {name}")
            elif (steady_ns - inp.last_ns) / NS > timeout:
                out.append(f"{name} silent for {(steady_ns - inp.last_ns) / NS:.3f} s (timeout {timeout} s)")
        return out

    def health_problems(self, steady_ns: int) -> list[str]:
        """Why a reset would be refused now (empty: all inputs healthy)."""
        out = self.input_problems(steady_ns)
        out += [f"{name}: {inp.message or 'reports a fault'}" for name, inp in self._inputs.items()
                if not inp.level_ok]
        expected = self.limits.expected_model_id
        out += [f"{name} runs checkpoint {inp.model_id!r}, expected {expected!r}"
                for name, inp in self._inputs.items() if expected and inp.model_id and inp.model_id != expected]
        if self._clock_problem:
            out.append(self._clock_problem)
        times = self._proposal_times
        window = int(self.limits.flood_window_s * NS)
        recent = sum(1 for t in times if t > steady_ns - window)
        if recent / self.limits.flood_window_s > self.limits.max_proposal_rate_hz:
            out.append(f"proposals still arrive at {recent / self.limits.flood_window_s:.0f} Hz")
        return out

    def reset(self, steady_ns: int) -> tuple[bool, str]:
        """Clear the emergency stop and latched faults, only while every input is healthy."""
        problems = self.health_problems(steady_ns)
        if problems:
            return False, "reset refused: " + "; ".join(problems)
        cleared = ([f"emergency stop ({self._emergency})"] if self._emergency else []) + list(self._latched)
        self._emergency = None
        self._latched.clear()
        self._armed = True
        return True, "reset: cleared " + (", ".join(cleared) if cleared else "nothing (no latched faults)")

    # ---- state ---------------------------------------------------------------------------
    @property
    def state(self) -> ShieldState:
        if self._emergency is not None:
            return ShieldState.EMERGENCY
        if self._latched or not self._armed:
            return ShieldState.SAFE_STOP
        return ShieldState.OK

    @property
    def commands_allowed(self) -> bool:
        return self.state == ShieldState.OK

    def active(self) -> list[tuple[str, str]]:
        """The interventions holding the shield in its safe state, as (code, reason)."""
        out = [("emergency_stop", self._emergency)] if self._emergency is not None else []
        out += list(self._latched.items())
        if not self._armed:
            waiting = [p for p in self.input_problems(self._clock[0]) if p] if self._clock else []
            out.append(("waiting_for_inputs", "; ".join(waiting) or "waiting for the first control tick"))
        return out
