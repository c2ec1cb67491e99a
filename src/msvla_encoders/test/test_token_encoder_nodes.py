"""In-process node tests of the token encoder nodes (lidar, radar, imu, tactile, proprio) over
real rclpy publishers/subscribers, against a small multi-sensor checkpoint built here."""
import random
import time
from collections import Counter

import numpy as np
import pytest
import torch
from sensor_msgs.msg import Image, Imu, JointState, PointCloud2, PointField
from std_msgs.msg import Float32MultiArray

from msvla_core.data.features import feature_to_array
from msvla_core.data.image import array_to_image_fields
from msvla_core.data.pointcloud import array_to_pointcloud_fields
from msvla_core.models.checkpoint import load_component
from msvla_msgs.msg import SensorFeature
from msvla_ros.messages import ns_to_stamp, stamp_to_ns
from msvla_ros.qos import COMMAND, FEATURE, SENSOR
from msvla_ros.testing import Spinner, wait_for_subscribers

ACTION_TOPIC = "/test/proprio/actions"

CONFIG = {
    "name": "token_encoder_nodes_test",
    "d_model": 32,
    "encoders": {
        "lidar": {"type": "lidar_pointnet2", "params": {
            "max_points": 128, "centroids": [32, 8], "mlp1": [16, 16], "mlp2": [16, 32], "pos_hidden": 16}},
        "radar": {"type": "radar_points", "params": {"max_targets": 16, "hidden": 16}},
        "imu": {"type": "imu_tcn", "params": {"window": 20, "hidden": 16}},
        "tactile": {"type": "tactile_grid", "params": {"grid_size": [8, 8], "sensors": 2, "channels": 8}},
        "tactile_gel": {"type": "tactile_gelsight", "params": {"image_size": [24, 32], "channels": 8}},
        "tactile_bt": {"type": "tactile_biotac", "params": {"hidden": 16}},
        "proprio": {"type": "proprio_mlp", "params": {"hidden": 16, "history": 4}},
    },
    "fusion": {"type": "late_average"},
    "head": {"type": "gaussian"},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from msvla_core.config import from_dict
    from msvla_core.models.checkpoint import save_pretrained
    from msvla_core.models.vla import MultiSensorVLA
    from msvla_core.models.vla_config import VLAConfig

    torch.manual_seed(7)
    path = tmp_path_factory.mktemp("multisensor_checkpoint")
    save_pretrained(MultiSensorVLA(from_dict(VLAConfig, CONFIG, where="test")), path)
    return path


@pytest.fixture(scope="module")
def rclpy_multisensor(checkpoint):
    """rclpy for this module only, with the multi-sensor checkpoint as a global parameter."""
    import rclpy

    torch.set_num_threads(1)
    rclpy.init(args=["--ros-args", "-p", f"checkpoint:={checkpoint}", "-p", f"action_topic:={ACTION_TOPIC}"])
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def tester(rclpy_multisensor):
    """Publishes sensor messages and collects features; `start(node, *pubs)` spins both and
    waits until every input publisher and the node's feature publisher are matched."""
    from rclpy.node import Node

    class Tester(Node):
        def __init__(self):
            super().__init__(f"token_encoder_tester_{random.randint(0, 1 << 30)}")
            self.spinner = None
            self.nodes = []

        def collect(self, topic):
            received = []
            self.create_subscription(SensorFeature, topic, received.append, FEATURE)
            return received

        def start(self, node, *pubs):
            self.nodes.append(node)
            self.spinner = Spinner([node, self])
            for pub in pubs:
                wait_for_subscribers(pub)
            wait_for_subscribers(node.feature_pub)

    node = Tester()
    yield node
    if node.spinner is not None:
        node.spinner.shutdown()
    for n in node.nodes:
        n.destroy_node()
    node.destroy_node()


def expected_feature(checkpoint, modality, raw):
    encoder, _, _ = load_component(checkpoint, f"encoder.{modality}")
    batch = {k: torch.from_numpy(v)[None] for k, v in encoder.preprocess(raw).items()}
    with torch.no_grad():
        return encoder(**batch)[0].numpy()


def check_feature(msg, node, checkpoint, raw, stamp=None):
    assert msg.modality == node.feature_name and msg.component_id == node.model_id
    if stamp is not None:
        assert msg.header.stamp == stamp
    expected = expected_feature(checkpoint, node.feature_name, raw)
    out = feature_to_array(msg)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=1e-5)


def cloud(columns: dict, stamp=None, frame_id="") -> PointCloud2:
    fields = array_to_pointcloud_fields(columns)
    fields["fields"] = [PointField(**f) for f in fields["fields"]]
    msg = PointCloud2(**fields)
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def test_lidar_encoder_reads_xyzi_defaults_missing_intensity_and_drops_malformed(tester, checkpoint):
    from msvla_encoders.lidar_encoder_node import LidarEncoderNode

    node = LidarEncoderNode()
    features = tester.collect("/msvla/features/lidar")
    pub = tester.create_publisher(PointCloud2, "/lidar/points", SENSOR)
    tester.start(node, pub)

    rng = np.random.default_rng(1)
    xyzi = np.column_stack([rng.uniform(-15, 15, (300, 2)), rng.uniform(-1.5, 2.5, 300),
                            rng.uniform(0, 255, 300)]).astype(np.float32)
    with_nan = xyzi.copy()
    with_nan[::25, 0] = np.nan  # missing returns: skipped like in the encoder's own preprocess

    truncated = cloud(dict(zip("xyz", xyzi.T[:3])))
    truncated.data = truncated.data[:-5]
    no_z = cloud({"x": xyzi[:, 0], "y": xyzi[:, 1]})
    for bad in (truncated, no_z):
        pub.publish(bad)
    assert Spinner.wait_for(lambda: node.drops["malformed_pointcloud"] >= 2)
    assert features == []

    good = cloud({"x": with_nan[:, 0], "y": with_nan[:, 1], "z": with_nan[:, 2], "intensity": with_nan[:, 3]},
                 stamp=tester.get_clock().now().to_msg(), frame_id="lidar")
    pub.publish(good)
    assert Spinner.wait_for(lambda: len(features) == 1)
    assert features[0].header.frame_id == "lidar"
    check_feature(features[0], node, checkpoint, with_nan[~np.isnan(with_nan).any(axis=1)], good.header.stamp)

    xyz_only = cloud(dict(zip("xyz", xyzi.T[:3])), stamp=tester.get_clock().now().to_msg())
    pub.publish(xyz_only)
    assert Spinner.wait_for(lambda: len(features) == 2)
    zero_intensity = np.column_stack([xyzi[:, :3], np.zeros(300, np.float32)])
    check_feature(features[1], node, checkpoint, zero_intensity, xyz_only.header.stamp)
    assert node.published == 2


def test_radar_encoder_reads_target_fields_and_drops_bad_scans(tester, checkpoint):
    from msvla_encoders.radar_encoder_node import RadarEncoderNode

    node = RadarEncoderNode()
    features = tester.collect("/msvla/features/radar")
    pub = tester.create_publisher(PointCloud2, "/radar/targets", SENSOR)
    tester.start(node, pub)

    rng = np.random.default_rng(2)
    targets = np.column_stack([rng.uniform(1, 60, 24), rng.uniform(-0.8, 0.8, 24),
                               rng.uniform(-15, 15, 24), rng.uniform(-10, 25, 24)]).astype(np.float32)
    names = ["range", "azimuth", "radial_velocity", "rcs"]

    pub.publish(cloud(dict(zip(names[:3], targets.T[:3]))))  # no rcs field
    negative = targets.copy()
    negative[3, 0] = -2.0
    pub.publish(cloud(dict(zip(names, negative.T))))
    assert Spinner.wait_for(lambda: node.drops["malformed_pointcloud"] >= 1 and node.drops["bad_input"] >= 1)
    assert features == []

    # field order in the message differs from the encoder's column order
    good = cloud({"rcs": targets[:, 3], "azimuth": targets[:, 1], "range": targets[:, 0],
                  "radial_velocity": targets[:, 2]}, stamp=tester.get_clock().now().to_msg(), frame_id="radar")
    pub.publish(good)
    assert Spinner.wait_for(lambda: len(features) == 1)
    check_feature(features[0], node, checkpoint, targets, good.header.stamp)
    assert features[0].header.frame_id == "radar"

    empty = cloud({n: np.zeros(0, np.float32) for n in names}, stamp=tester.get_clock().now().to_msg())
    pub.publish(empty)  # a scan without detections is information, not an error
    assert Spinner.wait_for(lambda: len(features) == 2)
    check_feature(features[1], node, checkpoint, np.zeros((0, 4), np.float32), empty.header.stamp)


def imu_msg(stamp_ns, values, frame_id="imu_link") -> Imu:
    msg = Imu()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    a, w = msg.linear_acceleration, msg.angular_velocity
    a.x, a.y, a.z, w.x, w.y, w.z = (float(v) for v in values)
    return msg


def test_imu_encoder_publishes_windows_at_its_rate_and_drops_bad_samples(tester, checkpoint):
    from msvla_encoders.imu_encoder_node import ImuEncoderNode

    node = ImuEncoderNode()
    rate = node.describe_parameter("rate_hz").floating_point_range[0]
    assert (rate.from_value, rate.to_value) == (1.0, 200.0) and node.values["rate_hz"] == 20.0
    features = tester.collect("/msvla/features/imu")
    pub = tester.create_publisher(Imu, "/imu/data", SENSOR)
    tester.start(node, pub)

    rng = np.random.default_rng(3)
    n, period_ns = 60, 5_000_000  # 200 Hz for 0.3 s: more than one 0.2 s window
    values = np.column_stack([rng.normal(0, 1, (n, 2)), 9.81 + rng.normal(0, 0.1, n), rng.normal(0, 0.3, (n, 3))])
    stamps = stamp_to_ns(tester.get_clock().now().to_msg()) + period_ns * np.arange(n)
    # One tight burst, as an IMU driver delivers after a stall: the node's queue_depth (100)
    # holds it. (Sleeping between publishes would starve this thread of the GIL while the
    # test executor threads spin.)
    started = time.monotonic()
    for stamp, row in zip(stamps, values):
        pub.publish(imu_msg(int(stamp), row))
    assert Spinner.wait_for(lambda: node.accepted == n)
    last = ns_to_stamp(int(stamps[-1]))
    assert Spinner.wait_for(lambda: any(f.header.stamp == last for f in features))
    elapsed = time.monotonic() - started
    published = [stamp_to_ns(f.header.stamp) for f in features]
    assert published == sorted(set(published)) and set(published) <= set(stamps.tolist())
    # rate-limited by the 20 Hz timer, not one feature per message
    assert len(features) <= elapsed * 20 + 2 and len(features) < n // 2

    keep = stamps >= stamps[-1] - 200_000_000
    raw = np.column_stack([values[keep], (stamps[keep] - stamps[-1]) / 1e9])
    assert len(raw) == 41
    final = features[published.index(stamps[-1])]
    assert final.header.frame_id == "imu_link"
    check_feature(final, node, checkpoint, raw)

    # bad samples are dropped with their reasons; with nothing new, nothing more is published
    count = len(features)
    nan_gyro = values[-1].copy()
    nan_gyro[4] = np.nan
    pub.publish(imu_msg(int(stamps[-1]) + period_ns, nan_gyro))
    pub.publish(imu_msg(int(stamps[-1]), values[-1]))
    pub.publish(imu_msg(int(stamps[-2]), values[-2]))
    no_accel = imu_msg(int(stamps[-1]) + 2 * period_ns, values[-1])
    no_accel.linear_acceleration_covariance[0] = -1.0
    pub.publish(no_accel)
    assert Spinner.wait_for(lambda: all(node.drops[r] == 1 for r in (
        "non_finite_imu", "duplicate_imu_stamp", "out_of_order_imu", "missing_imu_field")))
    time.sleep(0.2)  # four timer periods
    assert len(features) == count and node.accepted == n


def test_imu_encoder_aligned_to_a_camera_cuts_one_window_per_frame(tester, checkpoint):
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import CameraInfo

    from msvla_encoders.imu_encoder_node import ImuEncoderNode

    node = ImuEncoderNode(parameter_overrides=[Parameter("align_to_topic", value="/test/camera_info")])
    # a stall replays at most a few frames, not queue_depth (100) frames that are all too old by then
    frames_sub = next(sub for sub in node.subscriptions if sub.topic_name == "/test/camera_info")
    assert frames_sub.qos_profile.depth == 5 and node.values["queue_depth"] == 100
    features = tester.collect("/msvla/features/imu")
    imu_pub = tester.create_publisher(Imu, "/imu/data", SENSOR)
    info_pub = tester.create_publisher(CameraInfo, "/test/camera_info", SENSOR)
    tester.start(node, imu_pub, info_pub)

    rng = np.random.default_rng(5)
    n, period_ns = 60, 10_000_000  # 100 Hz for 0.6 s
    values = np.column_stack([rng.normal(0, 1, (n, 2)), 9.81 + rng.normal(0, 0.1, n), rng.normal(0, 0.3, (n, 3))])
    stamps = stamp_to_ns(tester.get_clock().now().to_msg()) + period_ns * np.arange(n)
    # frames on sample 25, between samples 35 and 36 and between 37 and 38; the last two arrive
    # before the samples that complete them
    frames = [int(stamps[25]), int(stamps[35]) + 4_000_000, int(stamps[37]) + 1_000_000]

    def frame(stamp_ns):
        info = CameraInfo()
        info.header.stamp = ns_to_stamp(stamp_ns)
        return info

    for stamp, row in zip(stamps[:36], values[:36]):
        imu_pub.publish(imu_msg(int(stamp), row))
    assert Spinner.wait_for(lambda: node.accepted == 36)
    for stamp_ns in frames:
        info_pub.publish(frame(stamp_ns))
    assert Spinner.wait_for(lambda: len(features) == 1)  # only the first frame has its samples
    for stamp, row in zip(stamps[36:], values[36:]):
        imu_pub.publish(imu_msg(int(stamp), row))
    assert Spinner.wait_for(lambda: len(features) == 3)
    assert [stamp_to_ns(f.header.stamp) for f in features] == frames
    # the window ends at the frame: samples in [frame - 0.2 s, frame], offsets relative to the frame
    keep = (stamps <= frames[1]) & (stamps >= frames[1] - 200_000_000)
    raw = np.column_stack([values[keep], (stamps[keep] - frames[1]) / 1e9])
    assert len(raw) == 20 and raw[-1, 6] == pytest.approx(-0.004)
    check_feature(features[1], node, checkpoint, raw)
    # a repeated frame is refused by name and encoded once
    info_pub.publish(frame(frames[2]))
    assert Spinner.wait_for(lambda: node.drops["duplicate_reference"] == 1)
    time.sleep(0.1)
    assert len(features) == 3


@pytest.mark.parametrize("kind", ["tactile_grid", "tactile_gelsight", "tactile_biotac"])
def test_tactile_encoder_subscribes_by_encoder_type(tester, checkpoint, kind):
    from msvla_encoders.tactile_encoder_node import TactileEncoderNode

    modality = {"tactile_grid": "tactile", "tactile_gelsight": "tactile_gel", "tactile_biotac": "tactile_bt"}[kind]
    # The node's default modality picks the checkpoint component, as `-p modality:=...` would.
    node = type("TestTactileNode", (TactileEncoderNode,), {"modality": modality})()
    assert node.encoder_type == kind
    features = tester.collect(f"/msvla/features/{modality}")
    rng = np.random.default_rng(4)
    stamp = tester.get_clock().now().to_msg()

    if kind == "tactile_grid":
        pub = tester.create_publisher(Image, "/tactile/pressure", SENSOR)
        pads = rng.uniform(0, 80, (2, 8, 8)).astype(np.float32)  # kPa, two pads stacked vertically
        good = Image(**array_to_image_fields(pads.reshape(16, 8), "32FC1"))
        bad = [(Image(**array_to_image_fields(rng.integers(0, 255, (16, 8), dtype=np.uint8), "mono8")),
                "malformed_tactile"),
               (Image(**array_to_image_fields(np.zeros((5, 5), np.float32), "32FC1")), "bad_input")]
        raw = pads
    elif kind == "tactile_gelsight":
        pub = tester.create_publisher(Image, "/tactile/image", SENSOR)
        rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        good = Image(**array_to_image_fields(np.ascontiguousarray(rgb[..., ::-1]), "bgr8"))
        bad = [(Image(**array_to_image_fields(rgb[..., 0].copy(), "mono8")), "malformed_tactile")]
        raw = rgb
    else:
        pub = tester.create_publisher(Float32MultiArray, "/tactile/biotac", SENSOR)
        vector = rng.normal(0, 1, 21).astype(np.float32)
        good = Float32MultiArray(data=vector.tolist())
        bad = [(Float32MultiArray(data=[1.0, 2.0, 3.0]), "bad_input")]
        raw = vector
    if hasattr(good, "header"):
        good.header.stamp = stamp
    tester.start(node, pub)

    for msg, _ in bad:
        pub.publish(msg)
    reasons = Counter(reason for _, reason in bad)
    assert Spinner.wait_for(lambda: all(node.drops[r] == c for r, c in reasons.items()))
    assert features == []
    before = tester.get_clock().now().nanoseconds
    pub.publish(good)
    assert Spinner.wait_for(lambda: len(features) == 1)
    if kind == "tactile_biotac":  # no header on the wire: stamped on arrival
        assert before <= stamp_to_ns(features[0].header.stamp) <= tester.get_clock().now().nanoseconds
        check_feature(features[0], node, checkpoint, raw)
    else:
        check_feature(features[0], node, checkpoint, raw, stamp)


def test_proprio_encoder_orders_joints_adds_action_history_and_drops_bad_states(tester, checkpoint):
    from msvla_encoders.proprio_encoder_node import PANDA_JOINTS, ProprioEncoderNode

    node = ProprioEncoderNode()
    assert node.joint_names == PANDA_JOINTS and node.values["action_topic"] == ACTION_TOPIC
    features = tester.collect("/msvla/features/proprio")
    state_pub = tester.create_publisher(JointState, "/joint_states", SENSOR)
    action_pub = tester.create_publisher(Float32MultiArray, ACTION_TOPIC, COMMAND)
    tester.start(node, state_pub, action_pub)

    rng = np.random.default_rng(5)
    actions = rng.normal(0, 1, (2, 7))
    for action in actions:
        action_pub.publish(Float32MultiArray(data=action.astype(np.float32).tolist()))
    action_pub.publish(Float32MultiArray(data=[0.1, 0.2, 0.3]))
    action_pub.publish(Float32MultiArray(data=[float("nan")] * 7))
    assert Spinner.wait_for(lambda: len(node.actions) == 2 and node.drops["malformed_action"] == 1
                            and node.drops["non_finite_action"] == 1)

    # the message lists the joints in another order, plus one the encoder does not use
    order = [8, 3, 0, 6, 1, 5, 2, 7, 4]
    names = [PANDA_JOINTS[i] for i in order] + ["camera_pan"]
    q, dq, tau = rng.normal(0, 1, 10), rng.normal(0, 0.5, 10), rng.normal(0, 10, 10)

    def state(names, q, dq, tau):
        msg = JointState(name=names, position=q.tolist(), velocity=dq.tolist(), effort=tau.tolist())
        msg.header.stamp = tester.get_clock().now().to_msg()
        return msg

    state_pub.publish(state(names[1:], q[1:], dq[1:], tau[1:]))  # panda_finger_joint2 missing
    state_pub.publish(state(names, q, np.zeros(0), tau))
    state_pub.publish(state(names, q, dq, tau[:4]))
    assert Spinner.wait_for(lambda: node.drops["missing_joint"] == 1 and node.drops["missing_velocity"] == 1
                            and node.drops["malformed_joint_state"] == 1)
    assert features == []

    good = state(names, q, dq, tau)
    state_pub.publish(good)
    assert Spinner.wait_for(lambda: len(features) == 1)
    back = np.argsort(order)  # message index of each Panda joint
    raw = {"position": q[back], "velocity": dq[back], "effort": tau[back],
           "action_history": actions.astype(np.float32).astype(np.float64)}
    check_feature(features[0], node, checkpoint, raw, good.header.stamp)
    assert feature_to_array(features[0]).shape == (5, 32)  # state token + 4 history slots
