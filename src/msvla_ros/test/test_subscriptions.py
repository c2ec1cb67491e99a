"""take_queued over real rclpy: a callback that drains its subscription handles a burst in one
executor cycle, where the executor alone takes one message per cycle."""
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt32

from msvla_ros.subscriptions import take_queued

BURST = 40
QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=BURST, reliability=ReliabilityPolicy.RELIABLE)


def burst_then_one_cycle(context, drain: bool, limit: int = BURST) -> tuple[list[int], int]:
    """Publish BURST messages, let them arrive, run one executor cycle; returns (values handled
    in that cycle, callbacks run)."""
    node = Node("take_queued_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    values, calls = [], []

    def on_msg(msg):
        calls.append(1)
        values.append(msg.data)
        if drain:
            values.extend(m.data for m in take_queued(sub, limit))

    sub = node.create_subscription(UInt32, "/test/burst", on_msg, QOS)
    pub = node.create_publisher(UInt32, "/test/burst", QOS)
    deadline = time.monotonic() + 10.0
    while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(BURST):
        pub.publish(UInt32(data=i))
    time.sleep(0.5)  # delivered to the subscription's queue, not yet taken
    executor.spin_once(timeout_sec=2.0)
    executor.shutdown()
    node.destroy_node()
    return values, len(calls)


def test_one_cycle_handles_one_message_without_draining(context):
    values, calls = burst_then_one_cycle(context, drain=False)
    assert (values, calls) == ([0], 1)


def test_draining_handles_the_whole_burst_in_order_in_one_cycle(context):
    values, calls = burst_then_one_cycle(context, drain=True)
    assert calls == 1 and values == list(range(BURST))


def test_draining_stops_at_its_limit(context):
    values, calls = burst_then_one_cycle(context, drain=True, limit=9)
    assert calls == 1 and values == list(range(10))
