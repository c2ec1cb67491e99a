"""staggered_timer over real rclpy: a name-dependent first delay, then the period, one timer throughout."""
import time

from rclpy.node import Node

from msvla_ros.executor import DirectExecutor
from msvla_ros.timers import phase_s, staggered_timer


def test_phases_differ_between_nodes_and_stay_within_the_period(context):
    nodes = [Node(f"staggered_{i}", context=context) for i in range(7)]
    try:
        phases = [phase_s(n, 1.0, "diagnostics") for n in nodes]
        assert all(0.05 <= p < 1.0 for p in phases)
        assert len({round(p, 3) for p in phases}) == len(phases)
        assert phases == [phase_s(n, 1.0, "diagnostics") for n in nodes]  # the same every time
        assert phase_s(nodes[0], 1.0, "qos") != phases[0]
    finally:
        for n in nodes:
            n.destroy_node()


def test_first_call_after_the_phase_then_every_period(context):
    node = Node("staggered_timer_node", context=context)
    executor = DirectExecutor(context=context)
    executor.add_node(node)
    calls = []
    period = 0.2
    try:
        start = time.monotonic()
        timer = staggered_timer(node, period, lambda: calls.append(time.monotonic() - start), key="test")
        assert list(node.timers) == [timer]
        while time.monotonic() - start < 1.5:
            executor.spin_once(timeout_sec=0.01)
        first = phase_s(node, period, "test")
        assert abs(calls[0] - first) < 0.05, (calls[0], first)
        gaps = [b - a for a, b in zip(calls, calls[1:])]
        assert len(calls) >= 6 and all(abs(g - period) < 0.05 for g in gaps), calls
        # the same timer all along: what tracks the node's timers (ManagedNode cleanup) finds it
        assert list(node.timers) == [timer]
    finally:
        executor.shutdown()
        node.destroy_node()
