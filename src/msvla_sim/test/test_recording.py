"""Recorded expert episodes read back with rosbags as the live graph's topics and types."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("rosbags")

from rosbags.highlevel import AnyReader  # noqa: E402

from msvla_core.data.bag_types import msvla_typestore  # noqa: E402
from msvla_core.data.image import depth_to_meters, image_to_rgb  # noqa: E402
from msvla_core.geometry import grasp_yaw_from_quaternion  # noqa: E402
from msvla_sim.record_franka import episode_dir, episode_rng, main as record_main  # noqa: E402
from msvla_sim.recording import TOPICS, episode_start_ns, record_episode  # noqa: E402

CALIBRATION = Path(__file__).resolve().parents[3] / "config" / "franka" / "calibration.yaml"
FRAMES = 3
SIZE = 64
ONCE = ("/sim/scene", "/msvla/instruction", "/camera/extrinsics", "/sim/grasp_outcome")


def read_bag(path: Path) -> dict[str, list]:
    """topic -> [(log time, message)] in log-time order."""
    out: dict[str, list] = {}
    with AnyReader([path], default_typestore=msvla_typestore()) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types == TOPICS
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("episodes")
    assert record_main(["--output", str(out / "mcap"), "--episodes", "3", "--seed-start", "100",
                        "--frames", str(FRAMES), "--format", "mcap", "--width", str(SIZE),
                        "--height", str(SIZE), "--calibration", str(CALIBRATION)]) == 0
    assert record_main(["--output", str(out / "sqlite"), "--episodes", "1", "--seed-start", "200",
                        "--frames", str(FRAMES), "--format", "sqlite3", "--width", str(SIZE),
                        "--height", str(SIZE), "--calibration", str(CALIBRATION)]) == 0
    bags = {seed: episode_dir(out / "mcap", seed) for seed in (100, 101, 102)}
    bags[200] = episode_dir(out / "sqlite", 200)
    return bags


def test_layout_and_storage(recorded):
    for seed, path in recorded.items():
        suffix = ".db3" if seed == 200 else ".mcap"
        assert (path / "metadata.yaml").is_file()
        assert [p.suffix for p in path.iterdir() if p.name != "metadata.yaml"] == [suffix]


def test_topics_counts_images_and_stamps(recorded):
    for seed, path in recorded.items():
        bag = read_bag(path)
        for topic in TOPICS:
            assert len(bag[topic]) == (1 if topic in ONCE else FRAMES), topic
        start = episode_start_ns(seed)
        assert bag["/sim/scene"][0][0] == start and bag["/msvla/instruction"][0][0] == start
        per_frame = [[stamp_ns(m) for _, m in bag[t]] for t in
                     ("/camera/color/image_raw", "/camera/depth/image_raw", "/camera/color/camera_info",
                      "/camera/depth/camera_info", "/joint_states", "/msvla/grasp")]
        assert all(s == per_frame[0] for s in per_frame)
        assert per_frame[0] == [start + i * 100_000_000 for i in range(FRAMES)]
        for topic in TOPICS:  # log time equals the header stamp
            for t, msg in bag[topic]:
                if hasattr(msg, "header"):
                    assert t == stamp_ns(msg), topic
        for _, img in bag["/camera/color/image_raw"]:
            assert (img.encoding, img.width, img.height) == ("rgb8", SIZE, SIZE)
            assert img.header.frame_id == "tabletop_camera_optical_frame"
            assert image_to_rgb(img).shape == (SIZE, SIZE, 3)
        for _, img in bag["/camera/depth/image_raw"]:
            assert (img.encoding, img.width, img.height) == ("32FC1", SIZE, SIZE)
            depth = depth_to_meters(img)
            # sensor noise: holes are NaN, the rest plausible ranges
            assert np.isfinite(depth).mean() > 0.7 and 0.3 < float(np.nanmedian(depth)) < 2.0
        for _, info in bag["/camera/color/camera_info"] + bag["/camera/depth/camera_info"]:
            assert (info.width, info.height) == (SIZE, SIZE)
            assert info.k[0] > 0 and info.k[8] == 1.0 and info.p[10] == 1.0
        for _, js in bag["/joint_states"]:
            assert len(js.name) == 9 and len(js.position) == 9


def test_label_on_named_object_and_outcome(recorded):
    successes = 0
    for seed, path in recorded.items():
        bag = read_bag(path)
        scene = json.loads(bag["/sim/scene"][0][1].data)
        instruction = bag["/msvla/instruction"][0][1].data
        frames = [stamp_ns(m) for _, m in bag["/camera/color/image_raw"]]
        assert [t for t, _ in bag["/msvla/grasp"]] == frames  # one label per frame
        label_t, label = bag["/msvla/grasp"][-1]
        last_frame = frames[-1]
        assert label_t == stamp_ns(label) == last_frame
        _, extrinsics = bag["/camera/extrinsics"][0]
        t = extrinsics.transform
        assert extrinsics.header.frame_id == "panda_link0"
        assert extrinsics.child_frame_id == "tabletop_camera_optical_frame"
        assert np.allclose([t.translation.x, t.translation.y, t.translation.z, t.rotation.x, t.rotation.y,
                            t.rotation.z, t.rotation.w], scene["camera_to_base"])
        assert label.header.frame_id == "panda_link0"
        assert label.instruction == instruction and label.model_id == "expert"
        assert 0.0 < label.width <= 0.08
        outcome = json.loads(bag["/sim/grasp_outcome"][0][1].data)
        assert outcome["instruction"] == instruction and outcome["grasp_stamp_ns"] == last_frame
        named = [o for o in scene["objects"] if o["name"] == outcome["target"]]
        assert len(named) == 1
        p = label.pose.position
        assert np.linalg.norm(np.array([p.x, p.y, p.z]) - named[0]["grasp"]["position"]) < 0.01
        assert outcome["resolved"] == outcome["target"]
        q = label.pose.orientation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
        assert np.isfinite(grasp_yaw_from_quaternion([q.x, q.y, q.z, q.w]))
        successes += int(outcome["success"])
    assert successes >= 2


def test_deterministic_for_a_seed(tmp_path):
    from msvla_sim.expert import make_scene, read_camera_to_base

    scene = make_scene(SIZE, SIZE, read_camera_to_base(CALIBRATION))
    try:
        a = record_episode(scene, 7, tmp_path / "a", episode_rng(7), frames=2, execute=False)
        b = record_episode(scene, 7, tmp_path / "b", episode_rng(7), frames=2, execute=False)
    finally:
        scene.close()
    assert a == b
    bag_a, bag_b = read_bag_raw(tmp_path / "a"), read_bag_raw(tmp_path / "b")
    assert bag_a == bag_b


def read_bag_raw(path: Path) -> list:
    with AnyReader([path], default_typestore=msvla_typestore()) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="frames"):
        record_episode(None, 0, tmp_path / "x", episode_rng(0), frames=0)
    with pytest.raises(ValueError, match="rate_hz"):
        record_episode(None, 0, tmp_path / "x", episode_rng(0), rate_hz=0.0)
    with pytest.raises(SystemExit):
        record_main(["--output", str(tmp_path), "--episodes", "0"])
