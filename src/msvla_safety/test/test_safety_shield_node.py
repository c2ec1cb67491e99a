"""In-process node test: safety_shield passes safe grasps and nothing else."""
import math

from rclpy.duration import Duration

from msvla_ros.testing import Spinner, wait_for_subscribers
from msvla_msgs.msg import GraspPose, SafetyStatus
from msvla_ros.qos import COMMAND


def grasp(stamp, x=0.5, y=0.0, z=0.05, width=0.05, frame="panda_link0"):
    msg = GraspPose(width=width, score=0.9, instruction="pick up the red cube")
    msg.header.stamp = stamp
    msg.header.frame_id = frame
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = x, y, z
    msg.pose.orientation.x, msg.pose.orientation.w = 1.0, 0.0
    return msg


def test_shield_passes_safe_grasps_and_rejects_unsafe_ones_with_reasons(ros, probe, spin_nodes):
    from msvla_safety.safety_shield_node import SafetyShieldNode

    node = SafetyShieldNode()
    out = probe.collect(GraspPose, "/msvla/grasp", COMMAND)
    status = probe.collect(SafetyStatus, "/msvla/safety/status", COMMAND)
    pub = probe.create_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
    spin_nodes(node, probe)
    wait_for_subscribers(pub)

    now = probe.get_clock().now()
    unsafe = {
        "outside_workspace": grasp(now.to_msg(), x=1.5),
        "non_finite": grasp(now.to_msg(), y=math.nan),
        "stale": grasp((now - Duration(seconds=30.0)).to_msg()),
        "future_stamp": grasp((now + Duration(seconds=30.0)).to_msg()),  # far enough to stay future however slow the test machine
        "wrong_frame": grasp(now.to_msg(), frame="camera"),
        "width_out_of_range": grasp(now.to_msg(), width=0.5),
    }
    for msg in unsafe.values():
        pub.publish(msg)
    assert Spinner.wait_for(lambda: len(status) >= len(unsafe))
    assert out == [], [(m.header, m.pose.position, m.header.frame_id) for m in out]
    codes = [code for s in status for code in s.interventions]
    for code in unsafe:
        assert code in codes
    reasons = " ".join(r for s in status for r in s.reasons)
    assert "position.x=1.500" in reasons and "position.y=nan" in reasons
    assert all(s.state == SafetyStatus.STATE_INTERVENING for s in status)

    safe = grasp(probe.now_stamp())
    pub.publish(safe)
    assert Spinner.wait_for(lambda: len(out) == 1)
    assert out[0].pose.position.x == 0.5 and out[0].header.stamp == safe.header.stamp
    assert Spinner.wait_for(lambda: status[-1].state == SafetyStatus.STATE_OK)
    assert node.shield.rejected == len(unsafe) and node.shield.passed == 1
