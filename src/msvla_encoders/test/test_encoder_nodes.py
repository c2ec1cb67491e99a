"""In-process node tests: rgb_encoder and depth_encoder over real rclpy publishers/subscribers."""
import numpy as np
import pytest
import torch
from sensor_msgs.msg import CameraInfo, Image

from msvla_ros.testing import Spinner, wait_for_subscribers
from msvla_core.data.features import feature_to_array
from msvla_core.data.image import array_to_image_fields
from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.models.checkpoint import load_component
from msvla_core.preprocessing import prepare_depth, prepare_rgb
from msvla_msgs.msg import SensorFeature
from msvla_ros.qos import FEATURE, SENSOR

CAMERA_POSE = [0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751]


def test_rgb_encoder_publishes_features_with_source_stamp_and_drops_malformed(ros, probe, spin_nodes, test_checkpoint):
    from msvla_encoders.rgb_encoder_node import RgbEncoderNode

    node = RgbEncoderNode()
    features = probe.collect(SensorFeature, "/msvla/features/rgb", FEATURE)
    pub = probe.create_publisher(Image, "/camera/color/image_raw", SENSOR)
    spin_nodes(node, probe)
    wait_for_subscribers(pub)

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)

    # malformed: step too small, unknown encoding -> dropped, the node keeps running
    bad_step = Image(**array_to_image_fields(rgb, "rgb8"))
    bad_step.step = 10
    unknown = Image(**array_to_image_fields(rgb, "rgb8"))
    unknown.encoding = "yuv422_weird"
    for msg in (bad_step, unknown):
        msg.header.stamp = probe.now_stamp()
        pub.publish(msg)
    assert Spinner.wait_for(lambda: node.drops["malformed_image"] >= 2)
    assert features == []

    good = Image(**array_to_image_fields(rgb, "rgb8"))
    good.header.stamp = probe.now_stamp()
    good.header.frame_id = "camera_optical"
    pub.publish(good)
    assert Spinner.wait_for(lambda: len(features) == 1)
    msg = features[0]
    assert msg.header.stamp == good.header.stamp and msg.header.frame_id == "camera_optical"
    assert msg.modality == "rgb" and msg.component_id == node.model_id
    encoder, config, _ = load_component(test_checkpoint, "encoder.rgb")
    with torch.no_grad():
        expected = encoder(torch.from_numpy(prepare_rgb(rgb, config))[None])[0].numpy()
    np.testing.assert_allclose(feature_to_array(msg), expected, atol=1e-5)


def test_depth_encoder_uses_camera_info_and_drops_nan_depth(ros, probe, spin_nodes, test_checkpoint):
    from msvla_encoders.depth_encoder_node import DepthEncoderNode

    node = DepthEncoderNode()
    assert list(node.get_parameter("camera_to_base").value) == CAMERA_POSE  # from the test's --ros-args
    features = probe.collect(SensorFeature, "/msvla/features/depth", FEATURE)
    depth_pub = probe.create_publisher(Image, "/camera/depth/image_raw", SENSOR)
    info_pub = probe.create_publisher(CameraInfo, "/camera/depth/camera_info", SENSOR)
    spin_nodes(node, probe)
    wait_for_subscribers(depth_pub)
    wait_for_subscribers(info_pub)

    depth = np.full((120, 160), 1.1, dtype=np.float32)
    depth[40:60, 50:90] = 0.95
    depth[::7, ::5] = np.nan  # sparse holes are normal and get filled

    # no CameraInfo yet -> dropped with its own reason
    msg = Image(**array_to_image_fields(depth, "32FC1"))
    msg.header.stamp = probe.now_stamp()
    depth_pub.publish(msg)
    assert Spinner.wait_for(lambda: node.drops["no_camera_info"] >= 1)

    camera = CameraModel(fx=140.0, fy=140.0, cx=79.5, cy=59.5, width=160, height=120)
    info = CameraInfo(width=160, height=120, k=[camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0])
    info_pub.publish(info)
    assert Spinner.wait_for(lambda: node.pose.camera is not None)

    all_nan = Image(**array_to_image_fields(np.full((120, 160), np.nan, np.float32), "32FC1"))
    all_nan.header.stamp = probe.now_stamp()
    depth_pub.publish(all_nan)
    assert Spinner.wait_for(lambda: node.drops["bad_input"] >= 1)
    assert features == []

    msg.header.stamp = probe.now_stamp()
    depth_pub.publish(msg)
    assert Spinner.wait_for(lambda: len(features) == 1)
    out = feature_to_array(features[0])
    assert features[0].header.stamp == msg.header.stamp
    encoder, config, _ = load_component(test_checkpoint, "encoder.depth")
    depth_input, geometry = prepare_depth(depth, camera, pose_to_matrix(CAMERA_POSE), config)
    with torch.no_grad():
        expected = encoder(torch.from_numpy(depth_input)[None], torch.from_numpy(geometry)[None])[0].numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)
