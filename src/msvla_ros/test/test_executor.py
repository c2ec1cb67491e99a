"""DirectExecutor over real rclpy: subscriptions, timers, parameter services, coroutine callbacks,
entities made and destroyed by callbacks, bursts, and shutdown from another thread."""
import threading
import time

import pytest
import rclpy
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import UInt32

from msvla_ros.executor import DirectExecutor

QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture
def spinning(context):
    """(executor, start): start() spins the DirectExecutor in a thread until the test ends."""
    executor = DirectExecutor(context=context)
    thread = threading.Thread(target=executor.spin, daemon=True)
    yield executor, thread.start
    executor.shutdown()
    thread.join(timeout=5.0)
    assert not thread.is_alive(), "DirectExecutor.spin did not return after shutdown"


def wait_for(predicate, timeout_s=10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def call(context, client_node, client, request):
    """A service call from another node, spun by rclpy's own executor in this thread."""
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(request)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(client_node)
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    executor.remove_node(client_node)
    assert future.done(), "no service response"
    return future.result()


def test_subscriptions_timers_and_a_burst_are_all_handled(context, spinning):
    executor, start = spinning
    node = Node("direct_executor_node", context=context)
    got, ticks = [], []
    node.create_subscription(UInt32, "/test/direct", lambda m: got.append(m.data), QOS)
    node.create_timer(0.01, lambda: ticks.append(time.monotonic()))
    executor.add_node(node)
    start()
    pub_node = Node("direct_executor_pub", context=context)
    pub = pub_node.create_publisher(UInt32, "/test/direct", QOS)
    assert wait_for(lambda: pub.get_subscription_count() == 1)
    for i in range(80):
        pub.publish(UInt32(data=i))
    assert wait_for(lambda: len(got) == 80), f"{len(got)} of 80 messages handled"
    assert got == list(range(80))
    n = len(ticks)
    assert wait_for(lambda: len(ticks) >= n + 20, 5.0), "a 100 Hz timer did not keep firing"


def test_parameter_services_answer(context, spinning):
    executor, start = spinning
    node = Node("direct_executor_params", context=context)
    node.declare_parameter("gain", 1.5)
    executor.add_node(node)
    start()
    client_node = Node("direct_executor_client", context=context)
    setter = client_node.create_client(SetParameters, "/direct_executor_params/set_parameters")
    value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=2.5)
    result = call(context, client_node, setter, SetParameters.Request(parameters=[ParameterMsg(name="gain", value=value)]))
    assert result.results[0].successful
    assert node.get_parameter("gain").value == 2.5
    getter = client_node.create_client(GetParameters, "/direct_executor_params/get_parameters")
    assert call(context, client_node, getter, GetParameters.Request(names=["gain"])).values[0].double_value == 2.5


def test_entities_made_and_destroyed_by_callbacks_and_coroutines(context, spinning):
    executor, start = spinning
    node = Node("direct_executor_dynamic", context=context)
    got, coroutine_got = [], []
    subs = []

    def on_timer():  # first call subscribes, later calls leave it; destroy happens from the test's message
        if not subs:
            subs.append(node.create_subscription(UInt32, "/test/dynamic", on_msg, QOS))

    def on_msg(msg):
        got.append(msg.data)
        if msg.data == 99 and subs:
            node.destroy_subscription(subs[0])

    async def on_async(msg):
        coroutine_got.append(msg.data)

    node.create_timer(0.02, on_timer)
    node.create_subscription(UInt32, "/test/coroutine", on_async, QOS)
    executor.add_node(node)
    start()
    pub_node = Node("direct_executor_dynamic_pub", context=context)
    pub = pub_node.create_publisher(UInt32, "/test/dynamic", QOS)
    async_pub = pub_node.create_publisher(UInt32, "/test/coroutine", QOS)
    assert wait_for(lambda: pub.get_subscription_count() == 1 and async_pub.get_subscription_count() == 1)
    for i in (1, 2, 99):
        pub.publish(UInt32(data=i))
    async_pub.publish(UInt32(data=7))
    assert wait_for(lambda: got == [1, 2, 99] and coroutine_got == [7]), (got, coroutine_got)
    assert wait_for(lambda: pub.get_subscription_count() == 0), "the destroyed subscription is still matched"
    pub.publish(UInt32(data=3))
    time.sleep(0.2)
    assert got == [1, 2, 99]


def test_context_shutdown_from_another_thread_ends_spin(context):
    executor = DirectExecutor(context=context)
    node = Node("direct_executor_shutdown", context=context)
    node.create_timer(1.0, lambda: None)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    time.sleep(0.2)
    rclpy.try_shutdown(context=context)
    thread.join(timeout=5.0)
    assert not thread.is_alive(), "spin() still running after the context shut down"
    executor.shutdown()
    node.destroy_node()


def test_a_cycle_serves_its_nodes_in_the_order_they_were_added(context):
    """Messages for several nodes ready in one wait are handled node by node in add order (rclpy
    keeps the nodes in a set); run_nodes adds a graph's nodes from the actuator end."""
    sender = Node("direct_executor_order_sender", context=context)
    names = [f"direct_executor_order_{i}" for i in range(6)]
    nodes, served = [], []
    for name in names:
        node = Node(name, context=context)
        node.create_subscription(UInt32, f"/test/order/{name}", lambda m, name=name: served.append(name), QOS)
        nodes.append(node)
    pubs = [sender.create_publisher(UInt32, f"/test/order/{name}", QOS) for name in names]
    try:
        for order in (names, names[::-1], [names[i] for i in (3, 0, 5, 1, 4, 2)]):
            executor = DirectExecutor(context=context)
            for name in order:
                executor.add_node(nodes[names.index(name)])
            executor.spin_once(timeout_sec=0.0)  # lists the entities: the next wait has them all
            assert wait_for(lambda: all(p.get_subscription_count() == 1 for p in pubs))
            served.clear()
            for pub in pubs:
                pub.publish(UInt32(data=1))
            time.sleep(0.5)  # every message queued before the one wait that finds them all
            executor.spin_once(timeout_sec=1.0)
            assert served == list(order)
            for node in nodes:
                executor.remove_node(node)
            executor.shutdown()
    finally:
        for node in nodes + [sender]:
            node.destroy_node()
