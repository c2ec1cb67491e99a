"""Reading rosbag2 recordings (mcap or sqlite3) for the offline trainers, without ROS.

A `BagSpec` says which topics a training bag must carry; `validate_bag` checks a recording against
it before a trainer spends time on it, and every failure names the bag and the topic so a bad
episode in a large data set can be found and removed. Sample formation lives in samples.py.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rosbags.rosbag2 import Reader

from msvla_core.config.loader import from_dict, load_yaml

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
GRASP = "msvla_msgs/msg/GraspPose"
TRANSFORM = "geometry_msgs/msg/TransformStamped"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
VEHICLE_COMMAND = "msvla_msgs/msg/VehicleCommand"
PATH = "nav_msgs/msg/Path"
IMU = "sensor_msgs/msg/Imu"
MODALITY_TYPES = (IMAGE, JOINT_STATE, POINT_CLOUD, IMU)
LABEL_TYPES = (GRASP, VEHICLE_COMMAND, PATH)


class BagError(ValueError):
    """A recording cannot be used for training; the message names the bag (and topic)."""


@dataclass
class ModalitySpec:
    topic: str
    type: str
    camera_info: str | None = None  # CameraInfo topic whose latest message describes the images
    # PointCloud2 fields read into the (N, len(fields)) float32 array the encoder gets, in this order
    # (LiDAR: x, y, z, intensity, with zeros for a cloud without intensity, as the LiDAR encoder node
    # reads it; radar: range, azimuth, radial_velocity, rcs)
    fields: list[str] | None = None
    # JointState: the joints the encoder takes, in its order (msvla_core.data.joint_state, as the
    # proprio_encoder node selects them); None keeps every joint with its name.
    joints: list[str] | None = None
    # Imu: windows of window_s seconds, cut from the sample stream as the imu_encoder node cuts them
    # (msvla_core.data.imu_window): one per frame of the image modality `align_to`, ending at its
    # stamp (the node's align_to_topic), or else at rate_hz ending at the newest sample. Each window
    # is one item of the modality.
    window_s: float | None = None
    rate_hz: float | None = None
    align_to: str | None = None

    def __post_init__(self):
        if not self.topic.startswith("/"):
            raise ValueError(f"topic must be an absolute ROS name, got {self.topic!r}")
        if self.type not in MODALITY_TYPES:
            raise ValueError(f"type {self.type!r} is not decodable; expected one of {', '.join(MODALITY_TYPES)}")
        if self.camera_info is not None and self.type != IMAGE:
            raise ValueError(f"camera_info applies to {IMAGE} modalities only, not {self.type}")
        if (self.type == POINT_CLOUD) != bool(self.fields):
            raise ValueError(f"fields (a non-empty list of PointCloud2 field names) are required for {POINT_CLOUD} "
                             f"modalities and apply to nothing else; got type {self.type}, fields {self.fields}")
        if self.joints is not None and (self.type != JOINT_STATE or not self.joints
                                        or len(set(self.joints)) != len(self.joints)):
            raise ValueError(f"joints (distinct JointState joint names) apply to {JOINT_STATE} modalities only; "
                             f"got type {self.type}, joints {self.joints}")
        if self.type == IMU:
            if (self.rate_hz is None) == (self.align_to is None):
                raise ValueError(f"{IMU} modalities need exactly one of rate_hz and align_to, got "
                                 f"rate_hz={self.rate_hz}, align_to={self.align_to}")
            timing = (self.window_s,) if self.rate_hz is None else (self.window_s, self.rate_hz)
            if not all(isinstance(v, (int, float)) and 0 < v < float("inf") for v in timing):
                raise ValueError(f"window_s and rate_hz must be positive numbers for {IMU} modalities, "
                                 f"got window_s={self.window_s}, rate_hz={self.rate_hz}")
        elif (self.window_s, self.rate_hz, self.align_to) != (None, None, None):
            raise ValueError(f"window_s, rate_hz and align_to apply to {IMU} modalities only, not {self.type}")


@dataclass
class InstructionSpec:
    topic: str = "/msvla/instruction"
    type: str = STRING

    def __post_init__(self):
        if self.type != STRING:
            raise ValueError(f"type must be {STRING}, got {self.type!r}")


@dataclass
class ExtrinsicsSpec:
    """Topic carrying the camera pose in the robot base frame (latched in the live graph; in a bag
    it is recorded once per calibration change)."""

    topic: str = "/camera/extrinsics"
    type: str = TRANSFORM

    def __post_init__(self):
        if self.type != TRANSFORM:
            raise ValueError(f"type must be {TRANSFORM}, got {self.type!r}")


@dataclass
class LabelSpec:
    topic: str
    type: str = GRASP
    max_offset_s: float = 0.1  # a label further than this from a sample stamp is not attached

    def __post_init__(self):
        if self.type not in LABEL_TYPES:
            raise ValueError(f"type {self.type!r} is not a known label; expected one of {', '.join(LABEL_TYPES)}")
        if not self.max_offset_s >= 0:
            raise ValueError(f"max_offset_s must be >= 0, got {self.max_offset_s}")


@dataclass
class BagSpec:
    modalities: dict[str, ModalitySpec]
    reference: str
    instruction: InstructionSpec = field(default_factory=InstructionSpec)
    labels: dict[str, LabelSpec] = field(default_factory=dict)
    extrinsics: ExtrinsicsSpec | None = None  # None: the trainer's calibration file applies
    slop_s: float = 0.05
    timeout_s: float = 0.5
    max_gap_s: float = 5.0  # a sensor stamp jump larger than this is treated as a clock jump

    def __post_init__(self):
        if not self.modalities:
            raise ValueError("modalities must name at least one modality")
        if self.reference not in self.modalities:
            raise ValueError(f"reference {self.reference!r} is not one of the modalities {sorted(self.modalities)}")
        for name in ("slop_s", "timeout_s", "max_gap_s"):
            value = getattr(self, name)
            if not value > 0 or value != value or value == float("inf"):
                raise ValueError(f"{name} must be a positive finite number of seconds, got {value}")
        topics = [m.topic for m in self.modalities.values()] + [self.instruction.topic] + \
                 [lab.topic for lab in self.labels.values()] + ([self.extrinsics.topic] if self.extrinsics else [])
        dup = sorted({t for t in topics if topics.count(t) > 1})
        if dup:
            raise ValueError(f"topics must be distinct per modality/label, {dup} used twice")
        for name, mod in self.modalities.items():
            if mod.align_to is not None and (mod.align_to not in self.modalities
                                             or self.modalities[mod.align_to].type != IMAGE):
                raise ValueError(f"modality {name}: align_to={mod.align_to!r} must name an {IMAGE} modality, "
                                 f"one of {sorted(n for n, m in self.modalities.items() if m.type == IMAGE)}")

    @classmethod
    def from_dict(cls, data, where: str = "<bag spec>") -> "BagSpec":
        return from_dict(cls, data, where)

    @classmethod
    def load(cls, path) -> "BagSpec":
        return from_dict(cls, load_yaml(path), str(path))

    def expected_types(self) -> dict[str, str]:
        """topic -> message type of every topic the bag must carry."""
        out = {}
        for mod in self.modalities.values():
            out[mod.topic] = mod.type
            if mod.camera_info:
                out[mod.camera_info] = CAMERA_INFO
        out[self.instruction.topic] = self.instruction.type
        for lab in self.labels.values():
            out[lab.topic] = lab.type
        if self.extrinsics:
            out[self.extrinsics.topic] = self.extrinsics.type
        return out

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class BagSummary:
    path: str
    storage: str
    duration_s: float
    start_ns: int  # log times of the first and last message
    end_ns: int
    message_counts: dict[str, int]
    stamp_range_ns: dict[str, tuple[int, int]]  # header stamps per topic (topics with a header)


@functools.cache
def default_typestore():
    """The MSVLA type store, built once: parsing the .msg files on every bag would dominate."""
    from msvla_core.data.bag_types import msvla_typestore
    return msvla_typestore()


def stamp_ns(msg) -> int:
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def open_reader(path) -> Reader:
    """An opened rosbags Reader; BagError names the bag when it is missing or unreadable."""
    path = Path(path)
    if not path.is_dir():
        raise BagError(f"{path}: bag directory does not exist")
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 directory (no metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for damaged metadata or storage
        raise BagError(f"{path}: corrupt or unreadable bag storage: {type(exc).__name__}: {exc}") from None
    return reader


def _check_topics(path: Path, reader: Reader, spec: BagSpec) -> dict[str, list]:
    by_topic: dict[str, list] = {}
    for conn in reader.connections:
        by_topic.setdefault(conn.topic, []).append(conn)
    if reader.message_count == 0:
        raise BagError(f"{path}: empty bag (no messages)")
    for topic, msgtype in spec.expected_types().items():
        conns = by_topic.get(topic)
        if not conns:
            raise BagError(f"{path}: topic {topic} is missing (bag has {sorted(by_topic)})")
        wrong = sorted({c.msgtype for c in conns if c.msgtype != msgtype})
        if wrong:
            raise BagError(f"{path}: topic {topic} has type {', '.join(wrong)}, expected {msgtype}")
        if sum(c.msgcount for c in conns) == 0:
            raise BagError(f"{path}: topic {topic} has no messages")
    return by_topic


def validate_bag(path, spec: BagSpec, max_gap_s: float | None = None, typestore=None) -> BagSummary:
    """Check a recording against `spec` and summarise it; raises BagError naming bag and topic.

    Every message of the spec's topics is decoded once, which also proves the storage is intact.
    Stamps must not go backwards on any topic; sensor (modality) stamps must not jump forward by
    more than `max_gap_s` (default spec.max_gap_s): such bags come from a restarted sim clock.
    """
    path = Path(path)
    store = typestore or default_typestore()
    gap_ns = int((spec.max_gap_s if max_gap_s is None else max_gap_s) * 1e9)
    sensor_topics = {m.topic for m in spec.modalities.values()}
    reader = open_reader(path)
    try:
        by_topic = _check_topics(path, reader, spec)
        conns = [c for t in spec.expected_types() for c in by_topic[t]]
        counts = {t: 0 for t in spec.expected_types()}
        last_log: dict[str, int] = {}
        last_stamp: dict[str, int] = {}
        ranges: dict[str, tuple[int, int]] = {}
        try:
            for conn, log_ns, raw in reader.messages(connections=conns):
                topic = conn.topic
                if topic in last_log and log_ns < last_log[topic]:
                    raise BagError(f"{path}: topic {topic} log time goes backwards "
                                   f"({last_log[topic]} -> {log_ns} ns)")
                last_log[topic] = log_ns
                counts[topic] += 1
                msg = store.deserialize_cdr(raw, conn.msgtype)
                if not hasattr(msg, "header"):
                    continue
                stamp = stamp_ns(msg)
                prev = last_stamp.get(topic)
                if prev is not None and stamp < prev:
                    raise BagError(f"{path}: topic {topic} clock jump: header stamp goes backwards "
                                   f"({prev} -> {stamp} ns)")
                if prev is not None and topic in sensor_topics and stamp - prev > gap_ns:
                    raise BagError(f"{path}: topic {topic} clock jump: header stamp jumps "
                                   f"{(stamp - prev) * 1e-9:.3f} s (max gap {gap_ns * 1e-9:.3f} s)")
                last_stamp[topic] = stamp
                lo = ranges.get(topic, (stamp, stamp))[0]
                ranges[topic] = (lo, stamp)
        except BagError:
            raise
        except Exception as exc:  # truncated chunks, bad CDR, sqlite corruption ...
            raise BagError(f"{path}: corrupt or truncated storage: {type(exc).__name__}: {exc}") from None
        return BagSummary(path=str(path), storage=_storage_id(path), duration_s=reader.duration * 1e-9,
                          start_ns=reader.start_time, end_ns=reader.end_time,
                          message_counts=counts, stamp_range_ns=ranges)
    finally:
        reader.close()


def _storage_id(path: Path) -> str:
    try:
        meta = yaml.safe_load((path / "metadata.yaml").read_text())
        return str(meta["rosbag2_bagfile_information"]["storage_identifier"])
    except Exception:  # the summary field is informative only; the reader already opened the bag
        return "unknown"
