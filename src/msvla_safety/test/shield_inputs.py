"""A test node that plays every input a shield watches (VLA heartbeat, fused sensor stream) at 20 Hz,
calls its services and collects its status."""
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from msvla_msgs.msg import FusedObservation, Heartbeat, SafetyStatus
from msvla_ros.qos import COMMAND, FEATURE, HEARTBEAT, LATCHED
from msvla_ros.testing import Spinner


class ShieldInputs(Node):
    def __init__(self, modalities):
        super().__init__("test_shield_inputs")
        self.modalities = list(modalities)
        self.alive = True
        self.level = Heartbeat.LEVEL_OK
        self.sequence = 0
        self.heartbeat_pub = self.create_publisher(Heartbeat, "/msvla/vla/heartbeat", HEARTBEAT)
        self.fused_pub = self.create_publisher(FusedObservation, "/msvla/fused", FEATURE)
        self.estop_pub = self.create_publisher(Bool, "/msvla/safety/emergency_stop", LATCHED)
        self.reset_client = self.create_client(Trigger, "/msvla/safety/reset")
        self.estop_client = self.create_client(Trigger, "/msvla/safety/trigger_emergency_stop")
        self.status = []
        self.create_subscription(SafetyStatus, "/msvla/safety/status", self.status.append, COMMAND)
        self.create_timer(0.05, self.beat)

    def beat(self):
        if not self.alive:
            return
        self.sequence += 1
        hb = Heartbeat(level=self.level, model_id="m1", sequence=self.sequence,
                       message="policy output non-finite" if self.level == Heartbeat.LEVEL_ERROR else "")
        hb.header.stamp = self.get_clock().now().to_msg()
        self.heartbeat_pub.publish(hb)
        fused = FusedObservation(modalities=self.modalities)
        fused.header.stamp = hb.header.stamp
        self.fused_pub.publish(fused)

    def call(self, client, request=None):
        assert client.wait_for_service(timeout_sec=10.0), f"{client.srv_name} not available"
        future = client.call_async(request or Trigger.Request())
        assert Spinner.wait_for(future.done), f"{client.srv_name} did not answer"
        return future.result()

    def state(self):
        return self.status[-1].state if self.status else None

    def recover(self):
        """Healthy inputs again, then a reset: the next test starts from OK."""
        self.alive, self.level = True, Heartbeat.LEVEL_OK
        assert Spinner.wait_for(lambda: self.call(self.reset_client).success, 10.0)
        assert Spinner.wait_for(lambda: self.state() == SafetyStatus.STATE_OK)
