"""Which of a simulator's periodic outputs are due at a tick of its one timer.

One timer that steps the world and then publishes whatever is due costs a single executor wake per
tick; a timer per sensor would wake the node once per sensor sample (rclpy's executor costs about
half a millisecond of CPU per wake on a 2-core machine), and sensors of equal rates would still be
taken at slightly different instants.
"""
from __future__ import annotations


class SensorSchedule:
    """Due times of named periodic outputs, checked at a timer's ticks (seconds, any monotonic clock).

    An output is due when the tick is within half a tick period of its due time, so an output at the
    tick rate fires at every tick despite timer jitter. After a stall it fires once and resumes its
    cadence from then, rather than catching up with a burst of stale samples.
    """

    def __init__(self, rates_hz: dict[str, float], start_s: float, min_tick_hz: float = 0.0):
        """`tick_period_s`, the period the timer must run at, is that of the fastest output or of
        `min_tick_hz` (e.g. the physics rate) if that is faster."""
        bad = {name: rate for name, rate in rates_hz.items() if not rate > 0.0}
        if bad:
            raise ValueError(f"sensor rates must be > 0 Hz, got {bad}")
        self.periods_s = {name: 1.0 / rate for name, rate in rates_hz.items()}
        self.tick_period_s = 1.0 / max(min_tick_hz, *rates_hz.values())
        self._due = {name: start_s for name in rates_hz}
        self.skipped = {name: 0 for name in rates_hz}  # samples lost to stalls

    def due(self, now_s: float) -> list[str]:
        """The outputs due at this tick, in the order the rates were given; advances their due times."""
        out = []
        for name, period in self.periods_s.items():
            due = self._due[name]
            if now_s < due - 0.5 * self.tick_period_s:
                continue
            out.append(name)
            late = int((now_s - due) / period + 1e-9)  # whole periods missed (float-safe)
            if late > 0:
                self.skipped[name] += late
            self._due[name] = due + (max(late, 0) + 1) * period
        return out
