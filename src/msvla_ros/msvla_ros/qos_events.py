"""QoS compatibility of a node's publishers and subscriptions, found by polling the ROS graph
instead of through rclpy's default QoS event handlers.

rclpy gives every publisher and subscription event handlers (incompatible QoS, incompatible type)
that only log. Each is a waitable the Python executor adds to its wait set and checks on every
cycle: for a node with 7 subscriptions and 4 publishers they made one idle executor cycle cost
0.62 instead of 0.26 ms, and the graph's nodes wake hundreds of times a second. `PolledQosEvents`
creates endpoints without those handlers and compares the QoS and type of every matched peer every
few seconds; a problem is logged once when it appears and reported in the node's diagnostics
(`qos_problems`) for as long as it lasts.
"""
from __future__ import annotations

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.qos import QoSCompatibility, qos_check_compatible

from .timers import staggered_timer

QOS_CHECK_PERIOD_S = 5.0
UNKNOWN_NODE = "_NODE_NAME_UNKNOWN_"  # what the graph says of an endpoint before its node is discovered


def type_name(msg_type) -> str:
    """'sensor_msgs/msg/Imu' for sensor_msgs.msg.Imu: the name the graph reports for a topic."""
    package, kind = msg_type.__module__.split(".")[:2]
    return f"{package}/{kind}/{msg_type.__name__}"


def endpoint_problems(node) -> tuple[list[str], bool]:
    """Peers of the node's publishers and subscriptions that cannot communicate with them: a
    different message type or incompatible QoS (rclpy.qos.qos_check_compatible says ERROR); and
    whether every peer was checked (one whose node is not discovered yet is not).

    Both sides of a comparison are the QoS the graph reports, our own endpoint's included: the
    profile an endpoint was created with leaves durations unspecified (0) where the graph reports
    what the middleware applied (infinite), and comparing the two would call every default
    publisher incompatible with every default subscription."""
    problems, complete = [], True
    endpoints = [(sub, "subscription", node.get_subscriptions_info_by_topic, node.get_publishers_info_by_topic)
                 for sub in node.subscriptions]
    endpoints += [(pub, "publisher", node.get_publishers_info_by_topic, node.get_subscriptions_info_by_topic)
                  for pub in node.publishers]
    me = (node.get_name(), node.get_namespace())
    for endpoint, kind, same_kind_of, peers_of in endpoints:
        ours = type_name(endpoint.msg_type)
        # (several of the node's own endpoints on one topic: a peer is reported only when it is
        # incompatible with all of them)
        own = [i.qos_profile for i in same_kind_of(endpoint.topic_name)
               if (i.node_name, i.node_namespace) == me and i.topic_type == ours]
        if not own:
            complete = False  # not in the graph yet: a later check compares it
            continue
        for peer in peers_of(endpoint.topic_name):
            if peer.node_name == UNKNOWN_NODE:
                complete = False  # its node is not discovered yet: a later check names it
                continue
            who = f"{peer.node_namespace.rstrip('/')}/{peer.node_name}"
            if peer.topic_type != ours:
                problems.append(f"{endpoint.topic_name}: this {kind} is {ours}, {who}'s is {peer.topic_type}")
                continue
            results = [qos_check_compatible(peer.qos_profile, q) if kind == "subscription"
                       else qos_check_compatible(q, peer.qos_profile) for q in own]
            if all(compatibility == QoSCompatibility.ERROR for compatibility, _ in results):
                reason = results[0][1]
                problems.append(f"{endpoint.topic_name}: QoS of this {kind} and {who} are incompatible ({reason})")
    return problems, complete


def graph_census(node) -> tuple:
    """How many endpoints the graph knows on each topic of the node's endpoints, its own and
    those that cannot match included: equal between two calls unless endpoints came or went."""
    return (tuple(node.count_publishers(sub.topic_name) + node.count_subscribers(sub.topic_name)
                  for sub in node.subscriptions)
            + tuple(node.count_publishers(pub.topic_name) + node.count_subscribers(pub.topic_name)
                    for pub in node.publishers))


class PolledQosEvents:
    """Mixin for rclpy Node and LifecycleNode classes (put it first among the bases): endpoints
    without default event handlers, and `qos_problems` updated every QOS_CHECK_PERIOD_S."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.qos_problems: list[str] = []
        self._qos_census: tuple | None = None
        self._qos_check_timer = staggered_timer(self, QOS_CHECK_PERIOD_S, self.check_qos, key="qos")

    def create_publisher(self, *args, event_callbacks=None, **kwargs):
        if event_callbacks is None:
            event_callbacks = PublisherEventCallbacks(use_default_callbacks=False)
        return super().create_publisher(*args, event_callbacks=event_callbacks, **kwargs)

    def create_subscription(self, *args, event_callbacks=None, **kwargs):
        if event_callbacks is None:
            event_callbacks = SubscriptionEventCallbacks(use_default_callbacks=False)
        return super().create_subscription(*args, event_callbacks=event_callbacks, **kwargs)

    def check_qos(self) -> list[str]:
        # Compatibility changes only when endpoints come or go: counting them is cheap, while the
        # full comparison took 1-5 ms a node, every node of a process in the same cycle.
        census = graph_census(self)
        if census == self._qos_census:
            return self.qos_problems
        problems, complete = endpoint_problems(self)
        self._qos_census = census if complete else None
        for problem in sorted(set(problems) - set(self.qos_problems)):
            self.get_logger().warning(f"cannot communicate: {problem}")
        self.qos_problems = problems
        return problems
