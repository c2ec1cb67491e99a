"""In-process node tests: the camera pose of the rgb_encoder (table-plane geometry, RGB-only graphs)
and the depth_encoder comes from a latched geometry_msgs/TransformStamped topic when one is set.

rclpy is initialised once for this module with extrinsics_topic and plane_geometry as global
parameters (they overrule the shared `ros` fixture of conftest.py for this module only).
"""
import numpy as np
import pytest
import torch
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TransformStamped
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from msvla_core.data.features import feature_to_array
from msvla_core.data.image import array_to_image_fields
from msvla_core.geometry import CameraModel, matrix_to_quaternion, pose_to_matrix
from msvla_core.models.checkpoint import load_component
from msvla_core.preprocessing import plane_geometry, prepare_depth, prepare_rgb
from msvla_msgs.msg import SensorFeature
from msvla_ros.qos import FEATURE, LATCHED, SENSOR
from msvla_ros.testing import Spinner, wait_for_subscribers

TOPIC = "/test/camera/extrinsics"
CAMERA_POSE = [0.95, 0.0, 0.75, -0.681449, -0.681449, 0.188751, 0.188751]
PLANE_Z = 0.02
CAMERA = CameraModel(fx=140.0, fy=140.0, cx=79.5, cy=59.5, width=160, height=120)


@pytest.fixture(scope="module")
def ros(test_checkpoint):
    import rclpy

    torch.set_num_threads(1)
    rclpy.init(args=["--ros-args", "-p", f"checkpoint:={test_checkpoint}",
                     "-p", f"camera_to_base:={CAMERA_POSE}", "-p", f"extrinsics_topic:={TOPIC}",
                     "-p", "plane_geometry:=true", "-p", f"plane_z:={PLANE_Z}"])
    yield rclpy
    rclpy.try_shutdown()


def transform(pose: np.ndarray, quaternion=None) -> TransformStamped:
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = "panda_link0", "tabletop_camera_optical_frame"
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in pose[:3, 3])
    q.x, q.y, q.z, q.w = (float(v) for v in (matrix_to_quaternion(pose[:3, :3]) if quaternion is None else quaternion))
    return msg


def camera_info() -> CameraInfo:
    return CameraInfo(width=CAMERA.width, height=CAMERA.height,
                      k=[CAMERA.fx, 0.0, CAMERA.cx, 0.0, CAMERA.fy, CAMERA.cy, 0.0, 0.0, 1.0])


def moved_pose(dx: float, dy: float) -> np.ndarray:
    pose = pose_to_matrix(CAMERA_POSE)
    pose[:2, 3] += [dx, dy]
    return pose


def diagnostics_of(probe, node_name: str) -> dict:
    latest = {}
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: latest.update(
        {v.key: v.value for s in m.status if s.name == node_name for v in s.values}),
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    return latest


def test_rgb_plane_geometry_follows_the_extrinsics_topic(ros, probe, spin_nodes, test_checkpoint):
    from msvla_encoders.rgb_encoder_node import RgbEncoderNode

    node = RgbEncoderNode()
    features = probe.collect(SensorFeature, "/msvla/features/rgb", FEATURE)
    image_pub = probe.create_publisher(Image, "/camera/color/image_raw", SENSOR)
    info_pub = probe.create_publisher(CameraInfo, "/camera/color/camera_info", SENSOR)
    extrinsics_pub = probe.create_publisher(TransformStamped, TOPIC, LATCHED)
    diagnostics = diagnostics_of(probe, "rgb_encoder")
    spin_nodes(node, probe)
    for pub in (image_pub, info_pub, extrinsics_pub):
        wait_for_subscribers(pub)
    rgb = np.random.default_rng(2).integers(0, 256, (CAMERA.height, CAMERA.width, 3), dtype=np.uint8)
    image = Image(**array_to_image_fields(rgb, "rgb8"))

    def encode_one():
        n = len(features)
        image.header.stamp = probe.now_stamp()
        image_pub.publish(image)
        assert Spinner.wait_for(lambda: len(features) > n), (dict(node.drops), len(features))
        return feature_to_array(features[-1])

    image.header.stamp = probe.now_stamp()
    image_pub.publish(image)  # no intrinsics yet: the plane cannot be intersected
    assert Spinner.wait_for(lambda: node.drops["no_camera_info"] >= 1) and features == []
    info_pub.publish(camera_info())
    assert Spinner.wait_for(lambda: node.pose.camera is not None)

    encoder, config, _ = load_component(test_checkpoint, "encoder.rgb")
    with torch.no_grad():
        learned = encoder(torch.from_numpy(prepare_rgb(rgb, config))[None])[0].numpy()
    first = encode_one()  # no transform yet: the camera_to_base parameter
    assert first.shape == (config.rgb_channels + 4, *config.feature_size)
    np.testing.assert_allclose(first[:config.rgb_channels], learned, atol=1e-5)
    np.testing.assert_allclose(first[config.rgb_channels:],
                               plane_geometry(CAMERA, pose_to_matrix(CAMERA_POSE), config, PLANE_Z), atol=1e-6)

    moved = moved_pose(0.10, -0.05)  # the camera slid along the table
    extrinsics_pub.publish(transform(moved))
    assert Spinner.wait_for(lambda: node.pose.extrinsics_received == 1)
    second = encode_one()[config.rgb_channels:]
    np.testing.assert_allclose(second, plane_geometry(CAMERA, moved, config, PLANE_Z), atol=1e-6)
    both = (first[-1] > 0.99) & (second[-1] > 0.99)
    assert both.sum() > 100
    np.testing.assert_allclose(second[0][both] - first[-4][both], 0.10, atol=1e-4)
    np.testing.assert_allclose(second[1][both] - first[-3][both], -0.05, atol=1e-4)
    np.testing.assert_allclose(second[2][both], PLANE_Z, atol=1e-5)

    extrinsics_pub.publish(transform(moved_pose(0.3, 0.3), quaternion=[0.0, 0.0, 0.0, 2.0]))
    assert Spinner.wait_for(lambda: node.drops["bad_extrinsics_rotation"] == 1)
    assert Spinner.wait_for(lambda: diagnostics.get("dropped.bad_extrinsics_rotation") == "1", 5.0), diagnostics
    np.testing.assert_array_equal(encode_one()[config.rgb_channels:], second)  # the last valid pose stays


def test_depth_encoder_takes_a_latched_pose_published_before_it_started(ros, probe, spin_nodes, test_checkpoint):
    from msvla_encoders.depth_encoder_node import DepthEncoderNode

    moved = moved_pose(-0.2, 0.15)
    extrinsics_pub = probe.create_publisher(TransformStamped, TOPIC, LATCHED)
    slightly_off = matrix_to_quaternion(moved[:3, :3]) * 1.0004  # message rounding: accepted, normalised
    extrinsics_pub.publish(transform(moved, slightly_off))

    node = DepthEncoderNode()
    features = probe.collect(SensorFeature, "/msvla/features/depth", FEATURE)
    depth_pub = probe.create_publisher(Image, "/camera/depth/image_raw", SENSOR)
    info_pub = probe.create_publisher(CameraInfo, "/camera/depth/camera_info", SENSOR)
    diagnostics = diagnostics_of(probe, "depth_encoder")
    spin_nodes(node, probe)
    wait_for_subscribers(depth_pub)
    wait_for_subscribers(info_pub)
    assert Spinner.wait_for(lambda: node.pose.extrinsics_received == 1)
    info_pub.publish(camera_info())
    assert Spinner.wait_for(lambda: node.pose.camera is not None)

    depth = np.full((CAMERA.height, CAMERA.width), 1.1, dtype=np.float32)
    depth[40:60, 50:90] = 0.95
    msg = Image(**array_to_image_fields(depth, "32FC1"))
    msg.header.stamp = probe.now_stamp()
    depth_pub.publish(msg)
    assert Spinner.wait_for(lambda: len(features) == 1), dict(node.drops)
    encoder, config, _ = load_component(test_checkpoint, "encoder.depth")
    _, expected = prepare_depth(depth, CAMERA, moved, config)
    out = feature_to_array(features[0])
    np.testing.assert_allclose(out[config.depth_channels:], expected, atol=1e-5)
    _, from_parameter = prepare_depth(depth, CAMERA, pose_to_matrix(CAMERA_POSE), config)
    assert np.abs(out[config.depth_channels] - from_parameter[0]).max() > 0.1  # it did not use the parameter

    bad = transform(moved)
    bad.transform.translation.y = float("nan")
    extrinsics_pub.publish(bad)
    assert Spinner.wait_for(lambda: node.drops["bad_extrinsics_translation"] == 1)
    assert Spinner.wait_for(lambda: diagnostics.get("dropped.bad_extrinsics_translation") == "1", 5.0), diagnostics
    assert node.pose.extrinsics_received == 1
