"""PolledQosEvents over real rclpy: endpoints without rclpy's default event handlers, and peers
that cannot communicate (incompatible QoS, another message type) found by polling and named."""
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String, UInt32

from msvla_ros.qos_events import PolledQosEvents, type_name

RELIABLE = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


class CheckedNode(PolledQosEvents, Node):
    pass


def until_problems(node, count: int, timeout_s: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        problems = node.check_qos()
        if len(problems) >= count:
            return problems
        time.sleep(0.05)
    return node.check_qos()


def test_type_name_is_the_graphs_name():
    assert type_name(String) == "std_msgs/msg/String"


def test_endpoints_have_no_event_handlers(context):
    checked, plain = CheckedNode("qos_checked", context=context), Node("qos_plain", context=context)
    try:
        for node in (checked, plain):
            node.create_subscription(String, "/test/qos_handlers", lambda m: None, RELIABLE)
            node.create_publisher(String, "/test/qos_handlers_out", RELIABLE)
        # rclpy adds two event handlers per endpoint (incompatible QoS and type) as waitables
        assert len(list(plain.waitables)) - len(list(checked.waitables)) >= 4
    finally:
        checked.destroy_node()
        plain.destroy_node()


def test_peers_that_cannot_communicate_are_named(context, peer_context):
    checked, peer = CheckedNode("qos_checked", context=context), Node("qos_peer", context=peer_context)
    try:
        checked.create_subscription(String, "/test/qos_reliable", lambda m: None, RELIABLE)
        checked.create_publisher(String, "/test/qos_typed", RELIABLE)
        checked.create_subscription(String, "/test/qos_fine", lambda m: None, BEST_EFFORT)
        peer.create_publisher(String, "/test/qos_reliable", BEST_EFFORT)  # cannot serve a reliable reader
        peer.create_subscription(UInt32, "/test/qos_typed", lambda m: None, RELIABLE)
        peer.create_publisher(String, "/test/qos_fine", RELIABLE)  # a best-effort reader takes it
        fine_out = checked.create_publisher(String, "/test/qos_fine_out", RELIABLE)  # defaults on both sides
        peer.create_subscription(String, "/test/qos_fine_out", lambda m: None, RELIABLE)
        deadline = time.monotonic() + 10.0
        while fine_out.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fine_out.get_subscription_count() == 1
        problems = until_problems(checked, 2)
        assert len(problems) == 2, problems
        reliability = next(p for p in problems if p.startswith("/test/qos_reliable"))
        assert "/qos_peer" in reliability and "incompatible" in reliability and "reliab" in reliability.lower()
        typed = next(p for p in problems if p.startswith("/test/qos_typed"))
        assert "std_msgs/msg/String" in typed and "std_msgs/msg/UInt32" in typed
        assert checked.qos_problems == problems
        peer.destroy_node()
        peer = None
        deadline = time.monotonic() + 10.0
        while checked.check_qos() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checked.qos_problems == []  # a problem lasts as long as the peer
    finally:
        checked.destroy_node()
        if peer is not None:
            peer.destroy_node()
