"""In-process node test: vla_node turns fused observations + an instruction into grasp proposals."""
import math
import time

import numpy as np
import torch
from std_msgs.msg import String

from msvla_ros.testing import Spinner, wait_for_subscribers
from msvla_core.data.features import array_to_feature_fields
from msvla_core.geometry import grasp_yaw_from_quaternion
from msvla_core.models.checkpoint import load_component
from msvla_core.models.language import SentenceEncoder
from msvla_msgs.msg import FusedObservation, GraspPose
from msvla_ros.qos import COMMAND, FEATURE, LATCHED


def fused_msg(array, stamp, component_id):
    msg = FusedObservation(modalities=["rgb", "depth"], ages=[0.0, 0.0], component_id=component_id,
                           **array_to_feature_fields(array))
    msg.header.stamp = stamp
    return msg


def test_vla_node_proposes_grasps_for_the_instruction_and_drops_bad_input(ros, probe, spin_nodes, test_checkpoint):
    from msvla_vla.vla_node import VlaNode

    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from msvla_core.models.actions import heatmap_mono8

    node = VlaNode(parameter_overrides=[Parameter("publish_heatmap", value=True)])
    assert node.autostart() == ""
    proposals = probe.collect(GraspPose, "/msvla/proposal/grasp", COMMAND)
    heatmaps = probe.collect(Image, "/msvla/vla/heatmap", FEATURE)
    fused_pub = probe.create_publisher(FusedObservation, "/msvla/fused", FEATURE)
    instruction_pub = probe.create_publisher(String, "/msvla/instruction", LATCHED)
    spin_nodes(node, probe)
    wait_for_subscribers(fused_pub)
    wait_for_subscribers(instruction_pub)

    rng = np.random.default_rng(2)
    fused = rng.normal(size=node.expected_shape).astype(np.float32)
    c = node.config.fused_channels
    h, w = node.expected_shape[1:]
    fused[c] = np.linspace(0.3, 0.7, w)[None, :].repeat(h, 0)  # x
    fused[c + 1] = np.linspace(-0.2, 0.2, h)[:, None].repeat(w, 1)  # y
    fused[c + 2] = 0.02  # z
    fused[c + 3] = 1.0  # valid

    fused_pub.publish(fused_msg(fused, probe.now_stamp(), node.model_id))
    assert not Spinner.wait_for(lambda: proposals, timeout_s=0.5), "no instruction: no proposal expected"

    instruction_pub.publish(String(data="pick up the  red cube "))
    assert Spinner.wait_for(lambda: node.instruction == "pick up the red cube")
    bad = fused.copy()
    bad[0, 0, 0] = np.inf
    fused_pub.publish(fused_msg(bad, probe.now_stamp(), node.model_id))
    no_geometry = fused.copy()
    no_geometry[c + 3] = 0.0
    fused_pub.publish(fused_msg(no_geometry, probe.now_stamp(), node.model_id))
    assert Spinner.wait_for(lambda: node.drops["malformed_fused"] == 1 and node.drops["no_action"] == 1)
    assert proposals == []

    stamp = probe.now_stamp()
    fused_pub.publish(fused_msg(fused, stamp, node.model_id))
    assert Spinner.wait_for(lambda: len(proposals) == 1)
    p = proposals[0]
    assert p.header.stamp == stamp and p.header.frame_id == "panda_link0"
    assert p.instruction == "pick up the red cube" and p.model_id == node.model_id

    head, _, _ = load_component(test_checkpoint, "policy")
    embedding = SentenceEncoder().encode(["pick up the red cube"])
    with torch.no_grad():
        expected = head(torch.from_numpy(fused)[None], embedding)
    got = [p.pose.position.x, p.pose.position.y, p.pose.position.z]
    np.testing.assert_allclose(got, expected.position[0].numpy(), atol=1e-5)
    q = [p.pose.orientation.x, p.pose.orientation.y, p.pose.orientation.z, p.pose.orientation.w]
    assert math.isclose(grasp_yaw_from_quaternion(q), float(expected.yaw[0]), abs_tol=1e-4)
    assert math.isclose(p.width, float(expected.width[0]), abs_tol=1e-6)
    assert Spinner.wait_for(lambda: len(heatmaps) == 1)
    heat = heatmaps[0]
    assert heat.header.stamp == stamp and heat.encoding == "mono8" and (heat.height, heat.width) == (h, w)
    np.testing.assert_array_equal(np.frombuffer(bytes(heat.data), np.uint8).reshape(h, w), heatmap_mono8(expected))


def test_a_model_that_outputs_nan_reports_error_heartbeats_and_proposes_nothing(ros, probe, spin_nodes, tmp_path):
    """A corrupted checkpoint (NaN policy weights) loads, but its outputs are non-finite: the node
    proposes nothing and its heartbeat says ERROR, which moves the shield to its safe state."""
    from rclpy.parameter import Parameter

    from msvla_core.models import GraspModelConfig, GraspVLA
    from msvla_core.models.checkpoint import save_pretrained
    from msvla_msgs.msg import Heartbeat
    from msvla_ros.qos import HEARTBEAT
    from msvla_vla.vla_node import VlaNode

    torch.manual_seed(7)
    model = GraspVLA(GraspModelConfig())
    with torch.no_grad():
        for p in model.head.parameters():
            p.fill_(float("nan"))
    save_pretrained(model, tmp_path / "nan_checkpoint")
    node = VlaNode(parameter_overrides=[Parameter("checkpoint", value=str(tmp_path / "nan_checkpoint"))])
    assert node.autostart() == ""
    proposals = probe.collect(GraspPose, "/msvla/proposal/grasp", COMMAND)
    beats = probe.collect(Heartbeat, "/msvla/vla/heartbeat", HEARTBEAT)
    fused_pub = probe.create_publisher(FusedObservation, "/msvla/fused", FEATURE)
    instruction_pub = probe.create_publisher(String, "/msvla/instruction", LATCHED)
    spin_nodes(node, probe)
    wait_for_subscribers(fused_pub)
    assert Spinner.wait_for(lambda: beats and beats[-1].level == Heartbeat.LEVEL_OK)
    assert beats[-1].model_id == node.model_id

    instruction_pub.publish(String(data="pick up the red cube"))
    assert Spinner.wait_for(lambda: node.instruction == "pick up the red cube")
    fused = np.zeros(node.expected_shape, dtype=np.float32)
    fused[node.config.fused_channels + 3] = 1.0  # every cell has geometry
    fused_pub.publish(fused_msg(fused, probe.now_stamp(), node.model_id))
    assert Spinner.wait_for(lambda: beats[-1].level == Heartbeat.LEVEL_ERROR)
    assert "non-finite" in beats[-1].message
    assert proposals == [] and node.drops["non_finite_action"] == 1


def test_vla_node_is_managed_configure_fails_with_the_reason_and_deactivate_stops_output(
        ros, probe, spin_nodes, test_checkpoint, tmp_path):
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from msvla_msgs.msg import Heartbeat
    from msvla_ros.qos import HEARTBEAT
    from msvla_vla.vla_node import VlaNode

    broken = VlaNode(parameter_overrides=[Parameter("checkpoint", value=str(tmp_path / "missing")),
                                          Parameter("autostart", value=False)])
    assert broken.autostart() == ""  # waits for a manager
    assert broken.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert "missing" in broken.configure_error
    assert broken._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    broken.destroy_node()

    node = VlaNode(parameter_overrides=[Parameter("autostart", value=False)])
    beats = probe.collect(Heartbeat, "/msvla/vla/heartbeat", HEARTBEAT)
    spin_nodes(node, probe)
    timers_before = set(node.timers)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert not Spinner.wait_for(lambda: beats, 0.5), "an inactive node sent heartbeats"
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert Spinner.wait_for(lambda: len(beats) >= 3)
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    time.sleep(0.2)  # a beat already in flight
    n = len(beats)
    time.sleep(0.5)
    assert len(beats) == n, "heartbeats continued after deactivate"
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert not [p for p in node.publishers if p.topic_name == "/msvla/vla/heartbeat"]
    # configure's timers (heartbeat, the staggered diagnostics, which has fired by now) are gone
    assert set(node.timers) == timers_before
