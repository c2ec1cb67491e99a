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


class StaggeredTimer:
    """Calls `callback` every `period_s` seconds, the first time after `phase_s(node, ...)`."""

    def __init__(self, node, period_s: float, callback, key: str = ""):
        self._node, self._period_s, self._callback = node, period_s, callback
        self._timer = node.create_timer(phase_s(node, period_s, key), self._first)

    def _first(self) -> None:
        self._node.destroy_timer(self._timer)
        self._timer = self._node.create_timer(self._period_s, self._callback)
        self._callback()

    def cancel(self) -> None:
        self._timer.cancel()
