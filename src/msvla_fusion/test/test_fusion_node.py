"""In-process node test: fusion_node synchronises feature streams and runs the fusion module."""
import numpy as np
import torch

from msvla_ros.testing import Spinner, wait_for_subscribers
from msvla_core.data.features import array_to_feature_fields, feature_to_array
from msvla_core.models.checkpoint import load_component
from msvla_msgs.msg import FusedObservation, SensorFeature
from msvla_ros.qos import FEATURE


def feature(probe, modality, array, stamp, component_id):
    msg = SensorFeature(modality=modality, component_id=component_id, **array_to_feature_fields(array))
    msg.header.stamp = stamp
    msg.header.frame_id = "camera_optical"
    return msg


def test_fusion_node_fuses_matched_features_and_drops_bad_ones(ros, probe, spin_nodes, test_checkpoint):
    from msvla_fusion.fusion_node import FusionNode

    node = FusionNode()
    fused = probe.collect(FusedObservation, "/msvla/fused", FEATURE)
    rgb_pub = probe.create_publisher(SensorFeature, "/msvla/features/rgb", FEATURE)
    depth_pub = probe.create_publisher(SensorFeature, "/msvla/features/depth", FEATURE)
    spin_nodes(node, probe)
    wait_for_subscribers(rgb_pub)
    wait_for_subscribers(depth_pub)
    rng = np.random.default_rng(1)
    rgb = rng.normal(size=node.expected_shapes["rgb"]).astype(np.float32)
    depth = rng.normal(size=node.expected_shapes["depth"]).astype(np.float32)
    depth[-1] = 1.0  # valid geometry everywhere

    # bad inputs: NaN values, another checkpoint, wrong shape -> dropped, each with its reason
    nan_rgb = rgb.copy()
    nan_rgb[0, 0, 0] = np.nan
    stamp = probe.now_stamp()
    rgb_pub.publish(feature(probe, "rgb", nan_rgb, stamp, node.model_id))
    rgb_pub.publish(feature(probe, "rgb", rgb, stamp, "some-other-checkpoint"))
    rgb_pub.publish(feature(probe, "rgb", rgb[:4], stamp, node.model_id))
    assert Spinner.wait_for(lambda: node.drops["malformed_feature"] == 1 and node.drops["checkpoint_mismatch"] == 1
                            and node.drops["wrong_shape"] == 1)

    stamp = probe.now_stamp()
    depth_pub.publish(feature(probe, "depth", depth, stamp, node.model_id))
    rgb_pub.publish(feature(probe, "rgb", rgb, stamp, node.model_id))
    assert Spinner.wait_for(lambda: any(list(m.modalities) == ["rgb", "depth"] for m in fused)), (node.published, node.sync.counters(), dict(node.drops), len(fused))
    msg = next(m for m in fused if list(m.modalities) == ["rgb", "depth"])
    assert msg.header.stamp == stamp and list(msg.ages) == [0.0, 0.0]
    fusion, _, _ = load_component(test_checkpoint, "fusion")
    with torch.no_grad():
        expected = fusion({"rgb": torch.from_numpy(rgb)[None], "depth": torch.from_numpy(depth)[None]})[0].numpy()
    np.testing.assert_allclose(feature_to_array(msg, "FusedObservation"), expected, atol=1e-5)


def test_fusion_node_reports_a_silent_stream_missing_instead_of_blocking(ros, probe, spin_nodes):
    from msvla_fusion.fusion_node import FusionNode

    node = FusionNode()
    fused = probe.collect(FusedObservation, "/msvla/fused", FEATURE)
    rgb_pub = probe.create_publisher(SensorFeature, "/msvla/features/rgb", FEATURE)
    spin_nodes(node, probe)
    wait_for_subscribers(rgb_pub)
    rgb = np.zeros(node.expected_shapes["rgb"], np.float32)
    rgb_pub.publish(feature(probe, "rgb", rgb, probe.now_stamp(), node.model_id))
    # depth never arrives: after its timeout the set is emitted with depth missing
    assert Spinner.wait_for(lambda: len(fused) == 1, timeout_s=5.0)
    assert list(fused[0].modalities) == ["rgb"]


def test_fusion_node_drops_out_of_order_features_with_the_reason(ros, probe, spin_nodes):
    from rclpy.duration import Duration

    from msvla_fusion.fusion_node import FusionNode

    node = FusionNode()
    pub = probe.create_publisher(SensorFeature, "/msvla/features/depth", FEATURE)
    spin_nodes(node, probe)
    wait_for_subscribers(pub)
    depth = np.zeros(node.expected_shapes["depth"], np.float32)
    now = probe.get_clock().now()
    pub.publish(feature(probe, "depth", depth, now.to_msg(), node.model_id))
    pub.publish(feature(probe, "depth", depth, (now - Duration(seconds=0.1)).to_msg(), node.model_id))
    pub.publish(feature(probe, "depth", depth, (now + Duration(seconds=60.0)).to_msg(), node.model_id))
    assert Spinner.wait_for(lambda: node.drops["out_of_order"] == 1 and node.drops["future_stamp"] == 1)
