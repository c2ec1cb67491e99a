"""Periodic diagnostic_msgs/DiagnosticArray reporting for a node."""
from __future__ import annotations

import time
from collections import Counter
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.qos import QoSProfile, ReliabilityPolicy

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


class Diagnostics:
    """Publishes one DiagnosticStatus for the node on /diagnostics at a fixed period."""

    def __init__(self, node, hardware_id: str, report: Callable[[], tuple[int, str, dict]],
                 period_s: float = 1.0):
        self._node = node
        self._hardware_id = hardware_id
        self._report = report
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics",
                                          QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        self._timer = node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        level, message, values = self._report()
        status = DiagnosticStatus(level=level, name=f"{self._node.get_name()}", message=message,
                                  hardware_id=self._hardware_id,
                                  values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self._node.get_clock().now().to_msg()
        self._pub.publish(msg)
