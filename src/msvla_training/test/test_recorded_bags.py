"""Recorded simulator episodes pass validation and give samples with the expert label, exactly as
the bag spec the trainers use describes them."""
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from msvla_core.data.bags import BagSpec, validate_bag
from msvla_core.data.samples import iter_samples
from msvla_core.geometry import pose_to_matrix
from msvla_sim.record_franka import main as record

ROOT = Path(__file__).resolve().parents[3]


def test_recorded_episodes_validate_and_yield_labelled_samples(tmp_path):
    assert record(["--output", str(tmp_path), "--episodes", "2", "--seed-start", "300000", "--frames", "3",
                   "--width", "64", "--height", "64",
                   "--calibration", str(ROOT / "config" / "franka" / "calibration.yaml")]) == 0
    spec = BagSpec.load(ROOT / "config" / "training" / "bags" / "franka_grasp.yaml")
    bags = sorted(tmp_path.iterdir())
    assert len(bags) == 2
    for bag in bags:
        validate_bag(bag, spec)
        counters = Counter()
        samples = list(iter_samples(bag, spec, counters=counters))
        assert len(samples) == 3 and counters["depth:no_camera_info"] == 0
        assert all(not s.missing for s in samples)
        # every frame carries the expert label and the episode's camera pose
        assert all("grasp" in s.labels for s in samples)
        assert samples[-1].instruction and samples[-1].raw["rgb"].shape == (64, 64, 3)
        scene = json.loads(read_scene(bag))
        for s in samples:
            assert s.extrinsics.shape == (4, 4)
            assert np.allclose(s.extrinsics, pose_to_matrix(scene["camera_to_base"]))


def read_scene(bag) -> str:
    from msvla_core.data.bags import default_typestore, open_reader
    store, reader = default_typestore(), open_reader(bag)
    try:
        conns = [c for c in reader.connections if c.topic == "/sim/scene"]
        for conn, _, raw in reader.messages(connections=conns):
            return store.deserialize_cdr(raw, conn.msgtype).data
    finally:
        reader.close()


def test_a_bad_camera_pose_in_a_bag_is_an_error_naming_the_topic(tmp_path):
    from msvla_core.data.samples import decode_extrinsics
    from msvla_core.data.bags import BagError, default_typestore
    t = default_typestore().types
    msg = t["geometry_msgs/msg/TransformStamped"](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="b"),
        child_frame_id="c", transform=t["geometry_msgs/msg/Transform"](
            translation=t["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=float("nan")),
            rotation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)))
    with pytest.raises(BagError, match="/camera/extrinsics.*non-finite"):
        decode_extrinsics(msg, "/camera/extrinsics")
    msg.transform.translation.z = 0.5
    msg.transform.rotation.w = 2.0
    with pytest.raises(BagError, match="unit quaternion"):
        decode_extrinsics(msg, "/camera/extrinsics")
