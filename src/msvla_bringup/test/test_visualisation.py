"""rviz support: the gripper outline geometry, the grasp head's heat-map image, the markers node
over real topics, and the rviz configuration naming only topics the graph documents."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from msvla_bringup.interfaces import NODES
from msvla_core.geometry import gripper_outline, top_down_grasp_quaternion
from msvla_core.models.actions import heatmap_mono8
from msvla_core.models.heads import GraspPrediction

ROOT = Path(__file__).resolve().parents[3]


def test_gripper_outline_fingers_end_at_the_grasp_point_a_width_apart_along_the_closing_axis():
    yaw, width = 0.3, 0.06
    points = gripper_outline((0.5, 0.1, 0.02), top_down_grasp_quaternion(yaw), width)
    tip_a, tip_b = points[0], points[2]
    assert np.allclose((tip_a + tip_b) / 2, (0.5, 0.1, 0.02))
    assert np.linalg.norm(tip_a - tip_b) == pytest.approx(width)
    closing = (tip_a - tip_b) / width
    assert abs(abs(closing @ np.array([-np.sin(yaw), np.cos(yaw), 0.0])) - 1.0) < 1e-9  # closing axis
    assert points[1][2] > tip_a[2] and points[7][2] > points[6][2]  # top-down: palm and stem above the tips


def test_heatmap_image_is_scaled_to_its_peak_and_absent_for_other_heads():
    log_probs = torch.log_softmax(torch.tensor([[0.0, 1.0], [2.0, 5.0]]).flatten(), 0).view(1, 2, 2)
    pred = GraspPrediction(position=torch.zeros(1, 3), yaw=torch.zeros(1), width=torch.zeros(1),
                           score=torch.zeros(1), heatmap=log_probs, localised=torch.ones(1, dtype=torch.bool))
    image = heatmap_mono8(pred)
    assert image.dtype == np.uint8 and image.shape == (2, 2) and image[1, 1] == 255 and image[0, 0] < 5
    nan = GraspPrediction(**{**pred.__dict__, "heatmap": torch.full((1, 2, 2), float("nan"))})
    assert heatmap_mono8(nan).max() == 0
    assert heatmap_mono8({"steering": torch.zeros(1)}) is None


def test_rviz_config_names_only_documented_topics_with_matching_reliability():
    config = yaml.safe_load((ROOT / "config" / "rviz" / "franka_rgbd.rviz").read_text())
    published = {e.topic: e for n in NODES for e in n.publishes}
    displays = config["Visualization Manager"]["Displays"]
    topics = []
    for d in displays:
        for key, value in d.items():
            if isinstance(value, dict) and "Value" in value:
                e = published.get(value["Value"])
                assert e is not None, f"{d['Name']}: {value['Value']} is published by no documented node"
                best_effort = e.qos == "sensor_data"
                # rviz must not ask for reliable delivery of a best-effort stream (it would receive nothing)
                assert not (best_effort and value["Reliability Policy"] == "Reliable"), d["Name"]
                topics.append(value["Value"])
            elif key.endswith("Topic") and isinstance(value, str):
                assert value in published, f"{d['Name']}: {value}"
                topics.append(value)
    assert {"/msvla/markers", "/msvla/vla/heatmap", "/camera/color/image_raw", "/camera/depth/image_raw"} <= set(topics)


def test_markers_node_draws_proposals_grasps_and_the_status_text(ros, probe, spin_nodes):
    from std_msgs.msg import String
    from visualization_msgs.msg import Marker, MarkerArray

    from msvla_bringup.grasp_markers_node import GraspMarkersNode
    from msvla_msgs.msg import GraspPose, SafetyStatus
    from msvla_ros.qos import COMMAND, LATCHED
    from msvla_ros.testing import Spinner, wait_for_subscribers

    node = GraspMarkersNode()
    markers = probe.collect(MarkerArray, "/msvla/markers", COMMAND)
    proposal_pub = probe.create_publisher(GraspPose, "/msvla/proposal/grasp", COMMAND)
    status_pub = probe.create_publisher(SafetyStatus, "/msvla/safety/status", COMMAND)
    instruction_pub = probe.create_publisher(String, "/msvla/instruction", LATCHED)
    spin_nodes(node, probe)
    for pub in (proposal_pub, status_pub, instruction_pub):
        wait_for_subscribers(pub)
    grasp = GraspPose(width=0.05, score=0.9, instruction="pick up the red cube")
    grasp.header.frame_id = "panda_link0"
    grasp.pose.position.x, grasp.pose.position.z = 0.5, 0.03
    q = top_down_grasp_quaternion(0.0)
    grasp.pose.orientation.x, grasp.pose.orientation.y, grasp.pose.orientation.z, grasp.pose.orientation.w = q
    proposal_pub.publish(grasp)
    instruction_pub.publish(String(data="pick up the red cube"))
    status_pub.publish(SafetyStatus(state=SafetyStatus.STATE_SAFE_STOP))
    all_markers = lambda: [m for array in markers for m in array.markers]  # noqa: E731
    assert Spinner.wait_for(lambda: {"proposal", "status"} <= {m.ns for m in all_markers()}
                            and any("SAFE STOP" in m.text for m in all_markers()))
    outline = next(m for m in all_markers() if m.ns == "proposal")
    assert outline.type == Marker.LINE_LIST and len(outline.points) == 8 and outline.header.frame_id == "panda_link0"
    assert outline.points[0].x == pytest.approx(0.5) and outline.points[0].z == pytest.approx(0.03)
    text = [m for m in all_markers() if m.ns == "status"][-1]
    assert "pick up the red cube" in text.text and text.color.r > 0.9 and text.color.g < 0.2
    node.destroy_node()


def test_markers_node_refuses_a_text_position_that_is_not_xyz(ros):
    from rclpy.parameter import Parameter

    from msvla_bringup.grasp_markers_node import GraspMarkersNode

    with pytest.raises(ValueError, match=r"text_position must be \[x, y, z\]"):
        GraspMarkersNode(parameter_overrides=[Parameter("text_position", value=[0.5, 0.0])])
