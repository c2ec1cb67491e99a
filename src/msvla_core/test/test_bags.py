"""Offline bag reading: spec loading, validation errors, synchronised samples, split and cache."""
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from msvla_core.config import ConfigError
from msvla_core.data.bag_types import msvla_typestore
from msvla_core.config import load_yaml
from msvla_core.data.bags import BagError, BagSpec, validate_bag
from msvla_core.data.image import array_to_image_fields
from msvla_core.data.samples import SampleCache, iter_samples, split_by_episode

SPEC_FILE = Path(__file__).resolve().parents[3] / "config/training/bags/franka_grasp.yaml"
STORE = msvla_typestore()
T = STORE.types
T0 = 1_000_000_000
DT = 100_000_000  # 10 Hz camera
H, W = 48, 64
K = [50.0, 0, 31.5, 0, 50.0, 23.5, 0, 0, 1]
INSTRUCTION = "pick up the red cube"


@pytest.fixture(scope="module")
def spec():
    # These hand-written bags carry no camera pose; the trainers then use the calibration file.
    data = load_yaml(SPEC_FILE)
    data.pop("extrinsics")
    return BagSpec.from_dict(data, str(SPEC_FILE))


def _header(stamp):
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                                    frame_id="camera")


def rgb_frame(k):
    rng = np.random.default_rng(k)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def depth_frame(k):
    return np.full((H, W), 0.5 + 0.01 * k, dtype=np.float32)


def write_bag(path, storage="mcap", frames=6, skip_depth=(), omit=(), wrong_type=None, empty_topic=None,
              stamp_of=None, no_messages=False, header_shift=None,
              depth_encoding="32FC1"):
    """A tiny Franka-graph recording; the keyword arguments break it in one way each."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    stamp_of = stamp_of or (lambda k: T0 + k * DT)
    topics = {"/camera/color/image_raw": "sensor_msgs/msg/Image", "/camera/depth/image_raw": "sensor_msgs/msg/Image",
              "/camera/depth/camera_info": "sensor_msgs/msg/CameraInfo", "/joint_states": "sensor_msgs/msg/JointState",
              "/msvla/instruction": "std_msgs/msg/String", "/msvla/grasp": "msvla_msgs/msg/GraspPose"}
    msgs = []  # (log time, topic, message)
    msgs.append((T0 - 50_000_000, "/msvla/instruction", T["std_msgs/msg/String"](data=INSTRUCTION)))
    msgs.append((T0 - 10_000_000, "/camera/depth/camera_info", T["sensor_msgs/msg/CameraInfo"](
        header=_header(T0), height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5), k=np.array(K),
        r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))))
    for k in range(frames):
        s = stamp_of(k)
        msgs.append((s + 5_000_000, "/camera/color/image_raw", T["sensor_msgs/msg/Image"](
            header=_header(s + (header_shift or {}).get(k, 0)), **_img(rgb_frame(k), "rgb8"))))
        if k not in skip_depth:
            msgs.append((s + 6_000_000, "/camera/depth/image_raw",
                         T["sensor_msgs/msg/Image"](header=_header(s + 2_000_000), **_img(_depth_wire(k, depth_encoding), depth_encoding))))
        msgs.append((s + 1_000_000, "/joint_states", T["sensor_msgs/msg/JointState"](
            header=_header(s + 1_000_000), name=[f"j{i}" for i in range(7)],
            position=np.arange(7) + 0.1 * k, velocity=np.zeros(7), effort=np.zeros(7))))
    grasp = T["msvla_msgs/msg/GraspPose"](
        header=_header(stamp_of(2) + 3_000_000), pose=T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=0.5, y=0.1, z=0.02),
            orientation=T["geometry_msgs/msg/Quaternion"](x=1.0, y=0.0, z=0.0, w=0.0)),
        width=0.04, score=0.9, instruction=INSTRUCTION, model_id="expert")
    msgs.append((stamp_of(frames - 1) + 50_000_000, "/msvla/grasp", grasp))  # labels are written late
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {}
        for topic, msgtype in topics.items():
            if topic in omit:
                continue
            if topic == wrong_type:
                msgtype = "std_msgs/msg/String"
            conns[topic] = writer.add_connection(topic, msgtype, typestore=STORE)
        for log_ns, topic, msg in sorted(msgs, key=lambda x: x[0]):
            if no_messages or topic not in conns or topic == empty_topic:
                continue
            if topic == wrong_type:
                msg = T["std_msgs/msg/String"](data="oops")
            writer.write(conns[topic], log_ns, STORE.serialize_cdr(msg, conns[topic].msgtype))
    return Path(path)


def _depth_wire(k, encoding):
    if encoding == "16UC1":  # millimetres, 0 = no return
        mm = np.rint(depth_frame(k) * 1000).astype(np.uint16)
        mm[0, 0] = 0
        return mm
    return depth_frame(k)


def _img(array, encoding):
    fields = array_to_image_fields(array, encoding)
    fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
    return fields


def test_spec_loads_and_errors_name_the_key(spec):
    assert spec.reference == "rgb" and spec.modalities["depth"].camera_info == "/camera/depth/camera_info"
    assert spec.labels["grasp"].max_offset_s == pytest.approx(0.05)
    with pytest.raises(ConfigError, match=r"modalities\.rgb: .*type 'sensor_msgs/msg/Temperature'"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Temperature"}},
                           "reference": "rgb"})
    with pytest.raises(ConfigError, match=r"modalities\.imu: .* need exactly one of rate_hz and align_to"):
        BagSpec.from_dict({"modalities": {"imu": {"topic": "/a", "type": "sensor_msgs/msg/Imu"}}, "reference": "imu"})
    with pytest.raises(ConfigError, match=r"modalities\.imu: window_s and rate_hz must be positive"):
        BagSpec.from_dict({"modalities": {"imu": {"topic": "/a", "type": "sensor_msgs/msg/Imu", "rate_hz": 20.0}},
                           "reference": "imu"})
    camera = {"topic": "/c", "type": "sensor_msgs/msg/Image"}
    with pytest.raises(ConfigError, match=r"modality imu: align_to='lidar' must name an sensor_msgs/msg/Image "
                                          r"modality, one of \['camera'\]"):
        BagSpec.from_dict({"modalities": {"camera": camera, "lidar": {"topic": "/l", "type": "sensor_msgs/msg/PointCloud2",
                                                                      "fields": ["x"]},
                                          "imu": {"topic": "/a", "type": "sensor_msgs/msg/Imu", "window_s": 0.2,
                                                  "align_to": "lidar"}}, "reference": "camera"})
    with pytest.raises(ConfigError, match=r"modalities\.rgb: window_s, rate_hz and align_to apply to sensor_msgs/msg/Imu"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image", "window_s": 0.2}},
                           "reference": "rgb"})
    with pytest.raises(ConfigError, match=r"modalities\.rgb: joints .* apply to sensor_msgs/msg/JointState"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image", "joints": ["a"]}},
                           "reference": "rgb"})
    with pytest.raises(ConfigError, match="reference 'depth'"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image"}}, "reference": "depth"})
    with pytest.raises(ConfigError, match="slop_s"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image"}},
                           "reference": "rgb", "slop_s": -1.0})
    with pytest.raises(ConfigError, match=r"labels\.grasp\.max_ofset_s: unknown key"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image"}},
                           "reference": "rgb", "labels": {"grasp": {"topic": "/g", "max_ofset_s": 1.0}}})


def test_point_cloud_modalities_need_their_field_names():
    cloud = {"topic": "/lidar/points", "type": "sensor_msgs/msg/PointCloud2"}
    with pytest.raises(ConfigError, match=r"modalities\.lidar: .*fields .* are required for sensor_msgs/msg/PointCloud2"):
        BagSpec.from_dict({"modalities": {"lidar": cloud}, "reference": "lidar"})
    with pytest.raises(ConfigError, match=r"modalities\.rgb: .*apply to nothing else"):
        BagSpec.from_dict({"modalities": {"rgb": {"topic": "/a", "type": "sensor_msgs/msg/Image", "fields": ["x"]}},
                           "reference": "rgb"})
    spec = BagSpec.from_dict({"modalities": {"lidar": {**cloud, "fields": ["x", "y", "z", "intensity"]}},
                              "reference": "lidar"})
    assert spec.modalities["lidar"].fields == ["x", "y", "z", "intensity"]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip_samples(tmp_path, spec, storage):
    bag = write_bag(tmp_path / f"ep_{storage}", storage, frames=6, skip_depth=(3,))
    summary = validate_bag(bag, spec)
    assert summary.message_counts["/camera/color/image_raw"] == 6
    assert summary.message_counts["/camera/depth/image_raw"] == 5
    assert summary.stamp_range_ns["/camera/color/image_raw"] == (T0, T0 + 5 * DT)
    assert summary.duration_s > 0.5 and summary.storage == storage
    counters = Counter()
    samples = list(iter_samples(bag, spec, counters))
    assert [s.stamp_ns for s in samples] == [T0 + k * DT for k in range(6)]
    assert counters["samples"] == 6 and counters["no_instruction"] == 0
    for k, s in enumerate(samples):
        assert s.instruction == INSTRUCTION
        np.testing.assert_array_equal(s.raw["rgb"], rgb_frame(k))
        assert s.raw["rgb"].dtype == np.uint8 and s.raw["rgb"].shape == (H, W, 3)
        np.testing.assert_allclose(s.raw["joints"]["position"], np.arange(7) + 0.1 * k)
        if k == 3:
            assert s.missing == ("depth",) and "depth" not in s.raw
        else:
            assert s.missing == ()
            np.testing.assert_array_equal(s.raw["depth"]["depth"], depth_frame(k))
            cam = s.raw["depth"]["camera"]
            assert (cam.fx, cam.cx, cam.width, cam.height) == (50.0, 31.5, W, H)
        if k == 2:  # the label stamp is 3 ms after frame 2, within max_offset_s
            lab = s.labels["grasp"]
            np.testing.assert_allclose(lab["position"], [0.5, 0.1, 0.02])
            np.testing.assert_allclose(lab["quaternion"], [1, 0, 0, 0])
            assert lab["width"] == pytest.approx(0.04) and lab["score"] == pytest.approx(0.9)
        else:
            assert s.labels == {}


def test_frames_before_the_instruction_are_skipped_and_counted(tmp_path, spec):
    # the instruction is logged at T0 - 50 ms; shift frames before it
    bag = write_bag(tmp_path / "early", frames=4, stamp_of=lambda k: T0 - 300_000_000 + k * DT)
    counters = Counter()
    samples = list(iter_samples(bag, spec, counters))
    assert counters["no_instruction"] == 3 and len(samples) == 1
    assert samples[0].stamp_ns == T0 - 300_000_000 + 3 * DT


def _truncate(bag):
    storage = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    return storage


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_storage_names_the_bag(tmp_path, spec, storage):
    bag = write_bag(tmp_path / f"torn_{storage}", storage)
    _truncate(bag)
    with pytest.raises(BagError, match=f"torn_{storage}.*(corrupt|truncated)"):
        validate_bag(bag, spec)
    with pytest.raises(BagError, match=f"torn_{storage}"):
        list(iter_samples(bag, spec))


def test_not_a_bag(tmp_path, spec):
    with pytest.raises(BagError, match="nowhere: bag directory does not exist"):
        validate_bag(tmp_path / "nowhere", spec)
    (tmp_path / "plain").mkdir()
    with pytest.raises(BagError, match="plain: not a rosbag2 directory"):
        validate_bag(tmp_path / "plain", spec)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_topic_errors_name_bag_and_topic(tmp_path, spec, storage):
    bag = write_bag(tmp_path / "nolabel", storage, omit=("/msvla/grasp",))
    with pytest.raises(BagError, match="nolabel: topic /msvla/grasp is missing"):
        validate_bag(bag, spec)
    bag = write_bag(tmp_path / "wrong", storage, wrong_type="/joint_states")
    with pytest.raises(BagError, match="wrong: topic /joint_states has type std_msgs/msg/String, "
                                       "expected sensor_msgs/msg/JointState"):
        validate_bag(bag, spec)
    bag = write_bag(tmp_path / "silent", storage, empty_topic="/camera/depth/camera_info")
    with pytest.raises(BagError, match="silent: topic /camera/depth/camera_info has no messages"):
        validate_bag(bag, spec)
    bag = write_bag(tmp_path / "void", storage, no_messages=True)
    with pytest.raises(BagError, match="void: empty bag"):
        validate_bag(bag, spec)


def test_clock_jumps(tmp_path, spec):
    jump = write_bag(tmp_path / "jump", frames=5, stamp_of=lambda k: T0 + k * DT + (10**10 if k >= 3 else 0))
    with pytest.raises(BagError, match=r"jump: topic /\S+ clock jump: header stamp jumps 10\.1"):
        validate_bag(jump, spec)
    assert validate_bag(jump, spec, max_gap_s=20.0).message_counts["/camera/color/image_raw"] == 5
    # the header stamp goes back while the log time moves on, as after a sim clock reset
    back = write_bag(tmp_path / "back", frames=5, header_shift={3: -350_000_000})
    with pytest.raises(BagError, match=r"back: topic /camera/color/image_raw clock jump: header stamp goes backwards"):
        validate_bag(back, spec)


def test_split_is_deterministic_and_order_free():
    paths = [f"/data/episode_{i:03d}" for i in range(200)]
    a = split_by_episode(paths)
    b = split_by_episode(list(reversed(paths)))
    assert a == b
    assert sorted(sum(a, [])) == sorted(paths)
    assert 130 < len(a[0]) < 190 and len(a[1]) > 5 and len(a[2]) > 5
    # a bag keeps its split when others are added
    more = split_by_episode(paths[:50])
    for part, fewer in zip(a, more):
        assert set(fewer) <= set(part)
    assert split_by_episode(paths, seed=1) != a
    with pytest.raises(ValueError, match="fractions"):
        split_by_episode(paths, fractions=(0.5, 0.2, 0.2))


def test_cache_hits_and_rebuilds(tmp_path, spec):
    bag = write_bag(tmp_path / "ep0", frames=5, skip_depth=(1,))
    calls = Counter()

    def counting(sample):
        from msvla_core.data.samples import flatten_sample
        calls["preprocess"] += 1
        return flatten_sample(sample)

    first = SampleCache(tmp_path / "cache", spec, "v1", counting).load(bag)
    assert calls["preprocess"] == 5 and len(first) == 5
    cache = SampleCache(tmp_path / "cache", spec, "v1", counting)
    second = cache.load(bag)
    assert calls["preprocess"] == 5 and cache.stats == Counter(hits=1)  # nothing decoded again
    for a, b in zip(first, second):
        assert (a.stamp_ns, a.instruction, a.missing) == (b.stamp_ns, b.instruction, b.missing)
        assert a.arrays.keys() == b.arrays.keys()
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key])
    assert second[1].missing == ("depth",) and "depth.depth" not in second[1].arrays
    np.testing.assert_array_equal(second[0].arrays["rgb"], rgb_frame(0))
    np.testing.assert_array_equal(second[0].arrays["depth.camera"], [50.0, 50.0, 31.5, 23.5, W, H])
    np.testing.assert_allclose(second[2].arrays["label.grasp.position"], [0.5, 0.1, 0.02])
    changed = BagSpec.from_dict({**spec.as_dict(), "slop_s": 0.02})
    stale = SampleCache(tmp_path / "cache", changed, "v1", counting)
    stale.load(bag)
    assert calls["preprocess"] == 10 and stale.stats == Counter(stale=1, builds=1)
    bumped = SampleCache(tmp_path / "cache", changed, "v2", counting)
    bumped.load(bag)
    assert bumped.stats == Counter(stale=1, builds=1)
    bumped.file_for(bag).write_bytes(b"\x00garbage")
    torn = SampleCache(tmp_path / "cache", changed, "v2", counting)
    assert len(torn.load(bag)) == 5 and torn.stats == Counter(invalid=1, builds=1)


def test_16uc1_depth_is_metres_with_nan_holes(tmp_path, spec):
    bag = write_bag(tmp_path / "mm", "sqlite3", frames=3, depth_encoding="16UC1")
    depth = next(iter(iter_samples(bag, spec))).raw["depth"]["depth"]
    assert depth.dtype == np.float32 and np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[1:, 1:], 0.5, rtol=1e-6)


def test_imu_windows_aligned_to_the_camera_end_at_each_frame(tmp_path):
    """Frames logged before or after their IMU samples get the same window; a frame with no IMU
    sample in its window is counted and its sample formed without the IMU."""
    spec = BagSpec.from_dict({"modalities": {
        "camera": {"topic": "/camera/color/image_raw", "type": "sensor_msgs/msg/Image"},
        "imu": {"topic": "/imu/data", "type": "sensor_msgs/msg/Imu", "window_s": 0.1, "align_to": "camera"}},
        "reference": "camera", "slop_s": 0.05, "timeout_s": 0.25})
    imu_dt = 10_000_000
    gap = range(30, 45)  # no IMU from 0.30 to 0.44 s: the frame at 0.4 s has none in its window
    msgs = [(T0 - 50_000_000, "/msvla/instruction", T["std_msgs/msg/String"](data=INSTRUCTION))]
    for i in range(71):
        if i in gap:
            continue
        stamp = T0 + i * imu_dt
        imu = T["sensor_msgs/msg/Imu"](
            header=_header(stamp), orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=np.full(9, -1.0), angular_velocity=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=i),
            angular_velocity_covariance=np.zeros(9),
            linear_acceleration=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=9.81),
            linear_acceleration_covariance=np.zeros(9))
        msgs.append((stamp + (8_000_000 if i % 20 == 0 else 1_000_000), "/imu/data", imu))  # late on even frames
    for k in range(7):
        s = T0 + k * DT
        msgs.append((s + 5_000_000, "/camera/color/image_raw",
                     T["sensor_msgs/msg/Image"](header=_header(s), **_img(rgb_frame(k), "rgb8"))))
    path = tmp_path / "aligned"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {t: writer.add_connection(t, m, typestore=STORE) for t, m in (
            ("/msvla/instruction", "std_msgs/msg/String"), ("/imu/data", "sensor_msgs/msg/Imu"),
            ("/camera/color/image_raw", "sensor_msgs/msg/Image"))}
        for log_ns, topic, msg in sorted(msgs, key=lambda x: x[0]):
            writer.write(conns[topic], log_ns, STORE.serialize_cdr(msg, conns[topic].msgtype))
    counters = Counter()
    samples = list(iter_samples(path, spec, counters))
    assert [s.stamp_ns for s in samples] == [T0 + k * DT for k in range(7)]
    assert counters["imu:empty_imu_window"] == 1 and samples[4].missing == ("imu",)
    for k in (1, 2, 6):  # 0.1 s windows of the 100 Hz IMU, both ends included, ending at the frame
        imu = samples[k].raw["imu"]
        np.testing.assert_allclose(imu[:, 5], np.arange(10 * k - 10, 10 * k + 1))  # gyro z = sample index
        np.testing.assert_allclose(imu[:, 6], np.linspace(-0.1, 0.0, 11), atol=1e-9)
    np.testing.assert_allclose(samples[3].raw["imu"][:, 5], np.arange(20, 30))  # the gap starts at 0.3 s
    np.testing.assert_allclose(samples[5].raw["imu"][:, 5], np.arange(45, 51))  # and ends at 0.45 s
