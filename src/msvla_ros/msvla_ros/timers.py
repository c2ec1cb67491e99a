"""Periodic housekeeping timers spread over their period instead of all firing together.

The nodes of a composed process are created within a few milliseconds of each other, so timers of
equal period (diagnostics every second, QoS checks every few seconds) would fire in the same
executor cycle for ever: seven diagnostics reports at once held the process for ~5 ms, delaying
whichever sensor set was in flight. A staggered timer first fires after a phase taken from the
node's name, the same in every run, then periodically.
"""
from __future__ import annotations

import zlib


def phase_s(node, period_s: float, key: str = "") -> float:
    """A delay in [0.05 period, period) that differs between node names (and keys)."""
    name = f"{node.get_namespace().rstrip('/')}/{node.get_name()}#{key}"
    return period_s * (0.05 + 0.95 * (zlib.crc32(name.encode()) % 1000) / 1000.0)


def staggered_timer(node, period_s: float, callback, key: str = ""):
    """An rclpy Timer of `node` that calls `callback` first after `phase_s(node, period_s, key)`,
    then every `period_s`. It stays one timer throughout (its period is changed, not the timer
    replaced), so whoever tracks the node's timers (ManagedNode's cleanup) still finds it."""
    first = True

    def tick() -> None:
        nonlocal first
        if first:
            first = False
            timer.timer_period_ns = int(period_s * 1e9)
            timer.reset()  # the next call one period from now
        callback()

    timer = node.create_timer(phase_s(node, period_s, key), tick)
    return timer
