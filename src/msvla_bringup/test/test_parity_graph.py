"""Parity: the split node graph (seven encoder processes -> fusion -> VLA) computes the same action
as the monolithic model on identical recorded inputs (max abs difference <= 1e-4).

Every sensor kind the model family supports is in the graph once; the graph runs once for the
module because each process imports torch.
"""
import math

import numpy as np
import pytest
import rclpy
import torch
import yaml
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, PointCloud2, PointField
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import String

from msvla_bringup.graph import GraphSpec, NodeSpec
from msvla_bringup.runner import GraphRunner
from msvla_core.config import from_dict
from msvla_core.data.image import array_to_image_fields, depth_to_meters, image_to_array, image_to_rgb
from msvla_core.data.imu_window import ImuWindow
from msvla_core.data.pointcloud import array_to_pointcloud_fields, cloud_to_xyzi, pointcloud_to_array
from msvla_core.models.actions import action_from_outputs
from msvla_core.models.checkpoint import load_pretrained, save_pretrained
from msvla_core.models.language import SentenceEncoder
from msvla_core.models.registry import batch_inputs
from msvla_core.models.vla import MultiSensorVLA
from msvla_core.models.vla_config import VLAConfig
from msvla_encoders.proprio_encoder_node import PANDA_JOINTS
from msvla_encoders.radar_encoder_node import FIELDS as RADAR_FIELDS
from msvla_msgs.msg import FusedObservation, GraspPose
from msvla_ros.messages import ns_to_stamp
from rclpy.qos import QoSProfile, ReliabilityPolicy

from msvla_ros.qos import COMMAND, LATCHED
from msvla_ros.testing import Spinner

pytestmark = pytest.mark.graph

ENCODERS = {"rgb": ("rgb_cnn", "rgb_encoder"), "depth": ("depth_cnn", "depth_encoder"),
            "lidar": ("lidar_pillars", "lidar_encoder"), "radar": ("radar_points", "radar_encoder"),
            "imu": ("imu_tcn", "imu_encoder"), "tactile": ("tactile_grid", "tactile_encoder"),
            "proprio": ("proprio_mlp", "proprio_encoder")}
INSTRUCTION = "pick up the red cube"
RELIABLE = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
IMU_WINDOW_S = 0.2


def pointcloud(columns: dict[str, np.ndarray], stamp) -> PointCloud2:
    fields = array_to_pointcloud_fields({k: v.astype(np.float32) for k, v in columns.items()})
    fields["fields"] = [PointField(**f) for f in fields["fields"]]
    msg = PointCloud2(**fields)
    msg.header.stamp = stamp
    return msg


def recorded_inputs(stamp_ns: int) -> dict:
    """One frame of every sensor, stamped `stamp_ns`, plus the IMU samples leading up to it."""
    rng = np.random.default_rng(7)
    stamp = ns_to_stamp(stamp_ns)
    out = {}
    out["rgb"] = Image(**array_to_image_fields(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), "rgb8"))
    depth = rng.uniform(0.5, 2.0, (96, 128)).astype(np.float32)
    depth[::9, ::7] = np.nan
    out["depth"] = Image(**array_to_image_fields(depth, "32FC1"))
    out["tactile"] = Image(**array_to_image_fields(rng.uniform(0, 40, (16, 16)).astype(np.float32), "32FC1"))
    for key in ("rgb", "depth", "tactile"):
        out[key].header.stamp = stamp
    n = 3000
    out["lidar"] = pointcloud({"x": rng.uniform(-20, 20, n), "y": rng.uniform(-20, 20, n), "z": rng.uniform(-1.5, 2, n),
                               "intensity": rng.uniform(0, 255, n)}, stamp)
    m = 24
    out["radar"] = pointcloud(dict(zip(RADAR_FIELDS, [rng.uniform(2, 60, m), rng.uniform(-0.6, 0.6, m),
                                                      rng.uniform(-15, 15, m), rng.uniform(-5, 15, m)])), stamp)
    out["proprio"] = JointState(name=list(PANDA_JOINTS), position=list(rng.uniform(-1, 1, 9)),
                                velocity=list(rng.normal(0, 0.1, 9)))
    out["proprio"].header.stamp = stamp
    imu = []
    for k in range(20):  # 100 Hz, the newest sample at the frame stamp
        msg = Imu()
        msg.header.stamp = ns_to_stamp(stamp_ns - (19 - k) * 10_000_000)
        a, w = rng.normal(0, 0.5, 3), rng.normal(0, 0.2, 3)
        msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = a[0], a[1], 9.81 + a[2]
        msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = w
        imu.append(msg)
    out["imu"] = imu
    return out


def raw_samples(msgs: dict) -> dict:
    """The raw sample each encoder node derives from its messages (the same conversions)."""
    window = ImuWindow(IMU_WINDOW_S, 2000)
    for m in msgs["imu"]:
        window.add(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec,
                   (m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z),
                   (m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z))
    joint = msgs["proprio"]
    return {"rgb": image_to_rgb(msgs["rgb"]), "depth": {"depth": depth_to_meters(msgs["depth"])},
            "lidar": cloud_to_xyzi(msgs["lidar"], "intensity"),
            "radar": pointcloud_to_array(msgs["radar"], RADAR_FIELDS),
            "imu": window.window(), "tactile": image_to_array(msgs["tactile"]),
            "proprio": {"position": np.asarray(joint.position), "velocity": np.asarray(joint.velocity)}}


@pytest.fixture(scope="module")
def parity_graph(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    config = from_dict(VLAConfig, {
        "name": "parity", "d_model": 64,
        "encoders": {m: {"type": t} for m, (t, _) in ENCODERS.items()},
        "fusion": {"type": "cross_modal_transformer"}, "head": {"type": "grasp_direct"}}, where="parity")
    torch.manual_seed(3)
    save_pretrained(MultiSensorVLA(config), tmp / "checkpoint")
    # reliable sensor subscriptions: the test sends each input once and must not lose it
    params = {"/**": {"ros__parameters": {"checkpoint": str(tmp / "checkpoint"), "num_threads": 1,
                                          "reliability": "reliable", "queue_depth": 30}},
              "fusion_node": {"ros__parameters": {"modalities": list(ENCODERS), "reference_modality": "rgb",
                                                  "slop_s": 0.05, "timeout_s": 10.0}},
              "imu_encoder": {"ros__parameters": {"rate_hz": 20.0, "window_s": IMU_WINDOW_S}}}
    (tmp / "parity.yaml").write_text(yaml.safe_dump(params))
    nodes = [NodeSpec(name=exe, package="msvla_encoders", executable=exe, parameters=["parity.yaml"])
             for _, exe in ENCODERS.values()]
    nodes += [NodeSpec(name="fusion_node", package="msvla_fusion", executable="fusion_node", parameters=["parity.yaml"]),
              NodeSpec(name="vla_node", package="msvla_vla", executable="vla_node", parameters=["parity.yaml"])]
    runner = GraphRunner(GraphSpec("parity", "every encoder kind", nodes), tmp, tmp / "logs")
    rclpy.init()
    probe = rclpy.create_node("parity_probe")
    runner.start()
    try:
        yield runner, probe, tmp / "checkpoint"
    finally:
        runner.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def test_split_graph_matches_the_monolithic_model(parity_graph):
    runner, probe, checkpoint = parity_graph
    topics = {"rgb": (Image, "/camera/color/image_raw"), "depth": (Image, "/camera/depth/image_raw"),
              "lidar": (PointCloud2, "/lidar/points"), "radar": (PointCloud2, "/radar/targets"),
              "imu": (Imu, "/imu/data"), "tactile": (Image, "/tactile/pressure"),
              "proprio": (JointState, "/joint_states")}
    pubs = {m: probe.create_publisher(t, topic, RELIABLE) for m, (t, topic) in topics.items()}
    info_pub = probe.create_publisher(CameraInfo, "/camera/depth/camera_info", RELIABLE)
    instruction_pub = probe.create_publisher(String, "/msvla/instruction", LATCHED)
    proposals = []
    probe.create_subscription(GraspPose, "/msvla/proposal/grasp", proposals.append, COMMAND)

    def spin_until(predicate, timeout_s):
        return Spinner.wait_for(lambda: (rclpy.spin_once(probe, timeout_sec=0.05), runner.check(), predicate())[2],
                                timeout_s)

    def subscribed(topic: str, node_name: str) -> bool:
        # by node name: entities left by earlier in-process tests must not count as the graph
        return any(info.node_name == node_name for info in probe.get_subscriptions_info_by_topic(topic))

    expected = {topic: ENCODERS[m][1] for m, (_, topic) in topics.items()}
    expected["/msvla/instruction"] = "vla_node"
    expected["/camera/depth/camera_info"] = "depth_encoder"
    assert spin_until(lambda: all(subscribed(t, n) for t, n in expected.items())
                      and any(i.node_name == "vla_node" for i in probe.get_publishers_info_by_topic("/msvla/proposal/grasp"))
                      and any(i.node_name == "fusion_node" for i in probe.get_subscriptions_info_by_topic("/msvla/features/lidar")),
                      120.0), "graph did not come up"
    diagnostics = {}
    probe.create_subscription(DiagnosticArray, "/diagnostics",
                              lambda m: diagnostics.update({s.name: {v.key: v.value for v in s.values} for s in m.status}),
                              RELIABLE)
    instruction_pub.publish(String(data=INSTRUCTION))
    # frames fused before the VLA node holds the instruction would be skipped as idle
    assert spin_until(lambda: diagnostics.get("vla_node", {}).get("instruction") == INSTRUCTION, 60.0), \
        f"the VLA node did not take the instruction; diagnostics: {diagnostics}"
    info = CameraInfo(width=128, height=96, k=[100.0, 0, 63.5, 0, 100.0, 47.5, 0, 0, 1.0])
    for _ in range(3):
        info_pub.publish(info)
        spin_until(lambda: False, 0.2)

    fused = []
    probe.create_subscription(FusedObservation, "/msvla/fused", fused.append, RELIABLE)
    split = None
    for attempt in range(4):  # a frame whose input was lost in transit is replaced by a fresh one
        stamp_ns = probe.get_clock().now().nanoseconds
        msgs = recorded_inputs(stamp_ns)
        for m in msgs["imu"]:  # the IMU history first, so its newest window is complete before the frame
            pubs["imu"].publish(m)
        spin_until(lambda: False, 0.5)
        for modality in ("depth", "lidar", "radar", "tactile", "proprio", "rgb"):
            pubs[modality].publish(msgs[modality])
        stamp = msgs["rgb"].header.stamp
        if spin_until(lambda: any(p.header.stamp == stamp for p in proposals), 20.0):
            sets = [list(f.modalities) for f in fused if f.header.stamp == stamp]
            if sets and set(sets[0]) == set(ENCODERS):  # an input lost in transit makes a frame unfit
                split = next(p for p in proposals if p.header.stamp == stamp)
                break
    assert split is not None, (f"no complete proposal for four recorded frames; fused sets "
                               f"{[list(f.modalities) for f in fused]}; node diagnostics: {diagnostics}")

    model = load_pretrained(checkpoint)
    raws = raw_samples(msgs)
    inputs = {m: batch_inputs([model.encoder(m).preprocess(raws[m])]) for m in ENCODERS}
    with torch.no_grad():
        action = action_from_outputs(model(inputs, SentenceEncoder().encode([INSTRUCTION])))
    got = [split.pose.position.x, split.pose.position.y, split.pose.position.z,
           split.pose.orientation.x, split.pose.orientation.y, split.pose.orientation.z, split.pose.orientation.w,
           split.width, split.score]
    expected = list(action.position) + list(action.quaternion) + [action.width, action.score]
    diff = max(abs(a - b) for a, b in zip(got, expected))
    assert diff <= 1e-4, f"split graph differs from the monolithic model by {diff}: {got} vs {expected}"
    assert all(math.isfinite(v) for v in got)
