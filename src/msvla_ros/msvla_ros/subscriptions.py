"""Taking a subscription's queued messages inside its own callback.

An rclpy executor takes one message per ready subscription per wait cycle. A sensor that
publishes about as often as the executor cycles (a 100 Hz IMU beside a camera encoder that needs
20 ms a frame in the same process) is then never caught up: after a start-up stall its queue stays
full and every message is handled up to queue-depth periods late. A callback that drains the queue
catches up in one cycle.
"""
from __future__ import annotations

from collections.abc import Iterator

from rclpy.exceptions import InvalidHandle
from rclpy.subscription import Subscription


def take_queued(subscription: Subscription, limit: int) -> Iterator:
    """Yield up to `limit` messages already queued on `subscription`, oldest first, without
    waiting; stops early when the queue is empty or the subscription has been destroyed."""
    for _ in range(limit):
        try:
            with subscription.handle:
                taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
        except InvalidHandle:  # destroyed during shutdown
            return
        if taken is None:
            return
        yield taken[0]
