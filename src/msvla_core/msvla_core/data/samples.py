"""Training samples from rosbag2 recordings, formed exactly as the live graph forms them.

Sensor messages are fed in log-time order into the same ApproximateSynchronizer the fusion node
uses (header stamps as item stamps, log times as receive times), so an offline sample pairs the
same frames a live inference would have seen. Instructions and labels are small and may be
recorded after the frames they belong to, so they are read in a first pass and looked up by time.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from msvla_core.data.bags import (CAMERA_INFO, GRASP, IMAGE, IMU, JOINT_STATE, PATH, VEHICLE_COMMAND, BagError,
                                  BagSpec, default_typestore, open_reader, stamp_ns)
from msvla_core.data.image import DEPTH_ENCODINGS, depth_to_meters, image_to_rgb
from msvla_core.data.imu_window import AlignedImuWindows, ImuSampleError, ImuWindow, imu_vectors
from msvla_core.data.joint_state import JointStateError, select_joints
from msvla_core.data.pointcloud import cloud_to_xyzi, pointcloud_to_array
from msvla_core.geometry import CameraModel
from msvla_core.preprocessing import ExtrinsicsError, extrinsics_matrix
from msvla_core.sync.approximate import ApproximateSynchronizer, StreamSpec


@dataclass
class Sample:
    stamp_ns: int  # header stamp of the reference modality
    raw: dict  # modality -> raw input of the encoder's preprocess
    instruction: str
    labels: dict  # label name -> decoded label (LABEL_DECODERS: grasp pose, vehicle command, path)
    missing: tuple[str, ...] = ()
    extrinsics: np.ndarray | None = None  # (4, 4) camera pose in the base frame, from the bag


def decode_extrinsics(msg, where: str) -> np.ndarray:
    """TransformStamped -> 4x4 pose, validated as the encoder nodes validate it; a non-finite or
    non-unit transform raises BagError naming the topic and the field."""
    t, q = msg.transform.translation, msg.transform.rotation
    try:
        return extrinsics_matrix((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))
    except ExtrinsicsError as exc:
        raise BagError(f"{where}: transform.{exc.field}: {exc}") from None


def decode_modality(msg, camera: CameraModel | None, fields: list[str] | None = None):
    """Raw encoder input: RGB (H, W, 3) uint8, depth {"depth": metres, "camera"}, a point cloud
    (N, len(fields)) float32 read as the LiDAR and radar encoder nodes read it, or joints. Items
    formed while reading (IMU windows, selected joints) are already raw inputs and pass through."""
    if isinstance(msg, (np.ndarray, dict)):
        return msg
    if hasattr(msg, "encoding"):
        if msg.encoding in DEPTH_ENCODINGS:
            return {"depth": depth_to_meters(msg), "camera": camera}
        return image_to_rgb(msg)
    if hasattr(msg, "point_step"):
        if list(fields[:3]) == ["x", "y", "z"] and len(fields) == 4:
            return cloud_to_xyzi(msg, fields[3])
        return pointcloud_to_array(msg, fields)
    return {"name": list(msg.name), **{k: np.asarray(getattr(msg, k), dtype=np.float64)
                                       for k in ("position", "velocity", "effort")}}


def decode_grasp(msg) -> dict:
    p, q = msg.pose.position, msg.pose.orientation
    return {"position": np.array([p.x, p.y, p.z]), "quaternion": np.array([q.x, q.y, q.z, q.w]),
            "width": float(msg.width), "score": float(msg.score)}


def decode_vehicle_command(msg) -> dict:
    return {"steering": float(msg.steering), "throttle": float(msg.throttle), "brake": float(msg.brake)}


def decode_path(msg) -> dict:
    """nav_msgs/Path -> waypoints (K, 3) x, y, yaw in the path's frame and their times (K,) in
    seconds after the path's stamp."""
    t0 = stamp_ns(msg)
    xy_yaw, times = [], []
    for pose in msg.poses:
        p, q = pose.pose.position, pose.pose.orientation
        xy_yaw.append((p.x, p.y, math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))))
        times.append((stamp_ns(pose) - t0) * 1e-9)
    return {"waypoints": np.asarray(xy_yaw, dtype=np.float64).reshape(-1, 3),
            "times": np.asarray(times, dtype=np.float64)}


LABEL_DECODERS = {GRASP: decode_grasp, VEHICLE_COMMAND: decode_vehicle_command, PATH: decode_path}


def _read_timelines(reader, spec: BagSpec, store):
    """Instruction (log time, text) list and per-label (stamp, decoded) lists, time-sorted."""
    wanted = {spec.instruction.topic: "__instruction__"}
    wanted.update({lab.topic: name for name, lab in spec.labels.items()})
    if spec.extrinsics:
        wanted[spec.extrinsics.topic] = "__extrinsics__"
    conns = [c for c in reader.connections if c.topic in wanted]
    instructions: list[tuple[int, str]] = []
    extrinsics: list[tuple[int, np.ndarray]] = []
    labels: dict[str, list[tuple[int, dict]]] = {name: [] for name in spec.labels}
    for conn, log_ns, raw in reader.messages(connections=conns):
        msg = store.deserialize_cdr(raw, conn.msgtype)
        key = wanted[conn.topic]
        if key == "__instruction__":
            instructions.append((log_ns, msg.data))
        elif key == "__extrinsics__":
            extrinsics.append((stamp_ns(msg), decode_extrinsics(msg, conn.topic)))
        else:
            labels[key].append((stamp_ns(msg), LABEL_DECODERS[conn.msgtype](msg)))
    for series in labels.values():
        series.sort(key=lambda x: x[0])
    extrinsics.sort(key=lambda x: x[0])
    return instructions, labels, extrinsics


def _extrinsics_at(series, stamp: int) -> np.ndarray | None:
    """Latest pose stamped at or before `stamp` (the first one for frames before any pose)."""
    if not series:
        return None
    i = bisect.bisect_right(series, stamp, key=lambda x: x[0])
    return series[max(i - 1, 0)][1]


def _nearest_label(series, stamp: int, max_ns: int):
    i = bisect.bisect_left(series, stamp, key=lambda x: x[0])
    near = [series[j] for j in (i - 1, i) if 0 <= j < len(series)]
    if not near:
        return None
    best = min(near, key=lambda x: abs(x[0] - stamp))
    return best[1] if abs(best[0] - stamp) <= max_ns else None


def iter_samples(path, spec: BagSpec, counters: Counter | None = None, typestore=None) -> Iterator[Sample]:
    """Yield the synchronised samples of one bag in stamp order.

    `counters` (if given) receives "samples", "no_instruction" (skipped) and the synchroniser's
    drop counters. Depth frames that arrive before any camera_info count as missing.
    """
    path = Path(path)
    store = typestore or default_typestore()
    counters = Counter() if counters is None else counters
    reader = open_reader(path)
    try:
        try:
            instructions, labels, extrinsics = _read_timelines(reader, spec, store)
            yield from _synchronised(reader, spec, store, instructions, labels, extrinsics, counters)
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f"{path}: corrupt or undecodable bag: {type(exc).__name__}: {exc}") from None
    finally:
        reader.close()


def _synchronised(reader, spec, store, instructions, labels, extrinsics, counters):
    timeout_ns, slop_ns = int(spec.timeout_s * 1e9), int(spec.slop_s * 1e9)
    others = [StreamSpec(n, timeout_ns=timeout_ns) for n in spec.modalities if n != spec.reference]
    sync = ApproximateSynchronizer(StreamSpec(spec.reference, timeout_ns=timeout_ns), others, slop_ns)
    topic_to_mod = {m.topic: n for n, m in spec.modalities.items()}
    info_to_mods: dict[str, list[str]] = {}
    for name, mod in spec.modalities.items():
        if mod.camera_info:
            info_to_mods.setdefault(mod.camera_info, []).append(name)
    cameras: dict[str, CameraModel] = {}
    imu = {name: _ImuStream(mod) for name, mod in spec.modalities.items() if mod.type == IMU}
    conns = [c for c in reader.connections if c.topic in topic_to_mod or c.topic in info_to_mods]
    instr_times = [t for t, _ in instructions]
    last_log = 0
    for conn, log_ns, raw in reader.messages(connections=conns):
        last_log = log_ns
        msg = store.deserialize_cdr(raw, conn.msgtype)
        if conn.msgtype == CAMERA_INFO:
            for name in info_to_mods[conn.topic]:
                cameras[name] = CameraModel.from_k(msg.k, msg.width, msg.height)
            continue
        name = topic_to_mod[conn.topic]
        needs_camera = spec.modalities[name].camera_info is not None and conn.msgtype == IMAGE
        if needs_camera and name not in cameras:
            counters[f"{name}:no_camera_info"] += 1
            continue
        item, stamp = msg, stamp_ns(msg)
        # IMU windows aligned to this frame, cut now if their samples are already in
        items = [(imu_name, window_stamp, window) for imu_name, stream in imu.items() if stream.align_to == name
                 for window_stamp, window in stream.add_reference(stamp, counters, imu_name)]
        if name in imu:
            items += [(name, window_stamp, window) for window_stamp, window in imu[name].add(msg, stamp, counters, name)]
        elif conn.msgtype == JOINT_STATE and spec.modalities[name].joints:
            try:
                item = select_joints(msg.name, msg.position, msg.velocity, msg.effort, spec.modalities[name].joints)
            except JointStateError as exc:
                counters[f"{name}:{exc.reason}"] += 1
                continue
        if name not in imu:
            items.append((name, stamp, item))
        for item_name, item_stamp, item in items:
            sets = sync.add(item_name, item_stamp, (item, cameras.get(item_name)), receive_ns=log_ns)
            yield from _emit(sets, spec, instructions, instr_times, labels, extrinsics, counters)
    sets = sync.advance(last_log + timeout_ns + 1)  # end of bag: every other stream times out
    yield from _emit(sets, spec, instructions, instr_times, labels, extrinsics, counters)
    counters.update({k: v for k, v in sync.dropped.items()})


class _ImuStream:
    """IMU samples of one modality -> windows cut as the imu_encoder node cuts them: aligned to the
    frames of another modality (AlignedImuWindows, the node's align_to_topic), or at rate_hz. The
    node's timer encodes the window ending at the newest sample; offline, a window is cut at the
    first sample at least one period after the previous window's end."""

    def __init__(self, mod):
        max_samples = max(16, int(mod.window_s * 2000))
        self.align_to = mod.align_to
        if mod.align_to:
            self.aligned = AlignedImuWindows(mod.window_s, max_samples)
        else:
            self.window = ImuWindow(mod.window_s, max_samples=max_samples)
            self.period_ns = int(round(1e9 / mod.rate_hz))
            self.next_ns: int | None = None

    def add(self, msg, stamp: int, counters: Counter, name: str) -> list[tuple[int, np.ndarray]]:
        """The (stamp, window) items this sample completes (none: not due yet, or refused)."""
        try:
            if self.align_to:
                _, windows, refused = self.aligned.add_sample(stamp, *imu_vectors(msg))
                return _count_refused(windows, refused, counters, name)
            if not self.window.add(stamp, *imu_vectors(msg)):
                return []
        except ImuSampleError as exc:
            counters[f"{name}:{exc.reason}"] += 1
            return []
        if self.next_ns is not None and stamp < self.next_ns:
            return []
        self.next_ns = stamp + self.period_ns
        return [(stamp, self.window.window())]

    def add_reference(self, stamp: int, counters: Counter, name: str) -> list[tuple[int, np.ndarray]]:
        """A frame of the aligned modality: the windows now complete."""
        return _count_refused(*self.aligned.add_reference(stamp), counters, name)


def _count_refused(windows, refused, counters: Counter, name: str) -> list[tuple[int, np.ndarray]]:
    """`windows`, after counting the frames that got none by reason, as the imu_encoder node does."""
    for _, reason in refused:
        counters[f"{name}:{reason}"] += 1
    return windows


def _emit(sets, spec, instructions, instr_times, labels, extrinsics, counters):
    for synced in sets:
        stamp = synced.reference_stamp_ns
        i = bisect.bisect_right(instr_times, stamp)
        if i == 0:
            counters["no_instruction"] += 1
            continue
        raw = {name: decode_modality(*item, spec.modalities[name].fields) for name, (_, item) in synced.items.items()}
        attached = {}
        for name, lab in spec.labels.items():
            found = _nearest_label(labels[name], stamp, int(lab.max_offset_s * 1e9))
            if found is not None:
                attached[name] = found
        counters["samples"] += 1
        yield Sample(stamp, raw, instructions[i - 1][1], attached, tuple(synced.missing),
                     _extrinsics_at(extrinsics, stamp))


def split_by_episode(paths: Sequence, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> tuple[list, list, list]:
    """Deterministic (train, val, test) split of bag directories by a hash of each directory name.

    A bag's split depends only on its name and the seed, never on the list order or on which other
    bags exist, so adding recordings never moves an episode between train and test.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    out: tuple[list, list, list] = ([], [], [])
    edges = np.cumsum(fractions)
    for p in sorted(paths, key=lambda x: (Path(x).name, str(x))):
        digest = hashlib.sha256(f"{seed}:{Path(p).name}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2 ** 64
        out[min(int(np.searchsorted(edges, u, side="right")), 2)].append(p)
    return out


def flatten_sample(sample: Sample) -> dict[str, np.ndarray]:
    """Default cache preprocessing: every raw input and label as named numpy arrays."""
    out: dict[str, np.ndarray] = {}
    for name, value in sample.raw.items():
        if isinstance(value, np.ndarray):
            out[name] = value
        elif "depth" in value:
            out[f"{name}.depth"] = value["depth"]
            cam = value["camera"]
            out[f"{name}.camera"] = np.array([cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height])
        else:
            out.update({f"{name}.{k}": v for k, v in value.items() if k != "name"})
    for name, lab in sample.labels.items():
        out.update({f"label.{name}.{k}": np.asarray(v, dtype=np.float64) for k, v in lab.items()})
    if sample.extrinsics is not None:
        out["extrinsics"] = sample.extrinsics
    return out


@dataclass
class CachedSample:
    stamp_ns: int
    instruction: str
    arrays: dict[str, np.ndarray]
    missing: tuple[str, ...]


class SampleCache:
    """Preprocessed samples of each bag in one safetensors file, so later epochs skip decoding.

    A file is valid for a bag only while the bag's metadata.yaml, the spec and `version` (bump it
    whenever `preprocess` changes) hash to the digest stored in it; otherwise it is rebuilt.
    """

    def __init__(self, root, spec: BagSpec, version: str = "1",
                 preprocess: Callable[[Sample], dict[str, np.ndarray]] = flatten_sample):
        self.root, self.spec, self.version, self.preprocess = Path(root), spec, version, preprocess
        self.stats = Counter()

    def digest(self, bag) -> str:
        meta = (Path(bag) / "metadata.yaml").read_bytes()
        spec = json.dumps(self.spec.as_dict(), sort_keys=True)
        return hashlib.sha256(b"\0".join([meta, spec.encode(), self.version.encode()])).hexdigest()

    def file_for(self, bag) -> Path:
        where = hashlib.sha256(str(Path(bag).resolve()).encode()).hexdigest()[:12]
        return self.root / f"{Path(bag).name}-{where}.safetensors"

    def load(self, bag) -> list[CachedSample]:
        from safetensors.numpy import load_file

        file, digest = self.file_for(bag), self.digest(bag)
        if file.is_file():
            try:
                from safetensors import safe_open
                with safe_open(str(file), framework="numpy") as f:
                    meta = f.metadata() or {}
                if meta.get("digest") == digest:
                    samples = self._unpack(load_file(str(file)), json.loads(meta["samples"]))
                    self.stats["hits"] += 1
                    return samples
                self.stats["stale"] += 1
            except Exception:  # a torn or foreign file is rebuilt, never trusted
                self.stats["invalid"] += 1
        return self._build(bag, file, digest)

    def _build(self, bag, file: Path, digest: str) -> list[CachedSample]:
        from safetensors.numpy import save_file

        samples, tensors, index = [], {}, []
        for i, sample in enumerate(iter_samples(bag, self.spec)):
            arrays = {k: np.ascontiguousarray(v) for k, v in self.preprocess(sample).items()}
            tensors.update({f"{i}/{k}": v for k, v in arrays.items()})
            index.append({"stamp_ns": sample.stamp_ns, "instruction": sample.instruction,
                          "missing": list(sample.missing), "keys": sorted(arrays)})
            samples.append(CachedSample(sample.stamp_ns, sample.instruction, arrays, sample.missing))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"digest": digest, "samples": json.dumps(index)})
        os.replace(tmp, file)  # readers never see a half-written cache
        self.stats["builds"] += 1
        return samples

    @staticmethod
    def _unpack(tensors: dict, index: list) -> list[CachedSample]:
        return [CachedSample(int(e["stamp_ns"]), e["instruction"],
                             {k: tensors[f"{i}/{k}"] for k in e["keys"]}, tuple(e["missing"]))
                for i, e in enumerate(index)]
