"""Periodic diagnostic_msgs/DiagnosticArray reporting for a node."""
from __future__ import annotations

import bisect
import time
from collections import Counter, deque
from typing import Callable

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import QoSProfile, ReliabilityPolicy

from .timers import staggered_timer

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


class DropCounter(Counter):
    """Counts dropped inputs by reason and logs each reason with its detail, at most once per
    `log_period_s` per reason (with the count since the last log) so a flood cannot hide others."""

    def __init__(self, node, log_period_s: float = 2.0):
        super().__init__()
        self._logger = node.get_logger()
        self._period = log_period_s
        self._last_log: dict[str, float] = {}
        self._since_log: Counter = Counter()

    def drop(self, reason: str, detail: str) -> None:
        self[reason] += 1
        self._since_log[reason] += 1
        now = time.monotonic()
        if now - self._last_log.get(reason, -1e9) >= self._period:
            n = self._since_log.pop(reason)
            self._last_log[reason] = now
            suffix = f" ({n} dropped for this reason since the last report)" if n > 1 else ""
            self._logger.error(f"dropped input [{reason}]: {detail}{suffix}")


def age_ms(node, stamp) -> float:
    """How old a header stamp is on the node's clock, in milliseconds."""
    return (node.get_clock().now().nanoseconds - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6


class FlowStats:
    """What a node's diagnostics say about its data flow: the arrival rate of each input, and for
    its outputs the time spent in this node (hop, from taking the input to publishing) and the age
    of the source stamp when published (sensor to here). Subtracting one node's age from the next
    node's gives the transport time between them."""

    def __init__(self, window: int = 200, rate_window_s: float = 5.0):
        self._arrivals: dict[str, deque] = {}
        self._hop_ms: deque = deque(maxlen=window)
        self._age_ms: deque = deque(maxlen=window)
        self._rate_window_s = rate_window_s

    def received(self, name: str) -> None:
        self._arrivals.setdefault(name, deque(maxlen=1000)).append(time.monotonic())

    def published(self, hop_ms: float | None, age_ms: float | None = None) -> None:
        if hop_ms is not None:
            self._hop_ms.append(hop_ms)
        if age_ms is not None:
            self._age_ms.append(age_ms)

    def values(self) -> dict[str, str]:
        now = time.monotonic()
        out = {}
        for name, times in sorted(self._arrivals.items()):
            # arrival times increase: the recent ones are found by bisection, not by a loop over
            # up to 1000 of them per input in every report
            recent = len(times) - bisect.bisect_left(times, now - self._rate_window_s)
            out[f"rate.{name}_hz"] = f"{recent / self._rate_window_s:.1f}"
        for key, samples in (("hop_ms", self._hop_ms), ("age_ms", self._age_ms)):
            if samples:
                median, p99 = np.percentile(np.asarray(samples), [50, 99])
                out[f"{key}_median"], out[f"{key}_p99"] = f"{median:.2f}", f"{p99:.2f}"
        return out


class Diagnostics:
    """Publishes one DiagnosticStatus for the node on /diagnostics at a fixed period."""

    def __init__(self, node, hardware_id: str, report: Callable[[], tuple[int, str, dict]],
                 period_s: float = 1.0):
        self._node = node
        self._hardware_id = hardware_id
        self._report = report
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics",
                                          QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._timer = staggered_timer(node, period_s, self.publish, key="diagnostics")

    def publish(self) -> None:
        level, message, values = self._report()
        qos_problems = getattr(self._node, "qos_problems", None)  # msvla_ros.qos_events.PolledQosEvents
        if qos_problems:
            values = {**values, "qos_problems": "; ".join(qos_problems)}
            if level < WARN:
                level, message = WARN, "endpoints that cannot communicate"
        status = DiagnosticStatus(level=level, name=f"{self._node.get_name()}", message=message,
                                  hardware_id=self._hardware_id,
                                  values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(msg)
