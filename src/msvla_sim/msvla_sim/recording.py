"""Record scripted-expert Franka grasp episodes as rosbag2 bags, without ROS.

Each episode is written with the live graph's topics, message types, encodings and frames
(see franka_sim_node), so offline tools read recorded and live data the same way:

  /sim/scene                  std_msgs/msg/String     JSON scene description, once
  /msvla/instruction          std_msgs/msg/String     once, at the start
  /camera/color/image_raw     sensor_msgs/msg/Image   rgb8, one per frame
  /camera/color/camera_info   sensor_msgs/msg/CameraInfo
  /camera/depth/image_raw     sensor_msgs/msg/Image   32FC1 metres
  /camera/depth/camera_info   sensor_msgs/msg/CameraInfo
  /camera/extrinsics          geometry_msgs/msg/TransformStamped  camera pose in the base frame, once
  /joint_states               sensor_msgs/msg/JointState
  /msvla/grasp                msvla_msgs/msg/GraspPose  the expert label of every frame (model_id
                                                      "expert", stamp = the frame's stamp)
  /sim/grasp_outcome          std_msgs/msg/String     JSON result of executing the label

Time is a synthetic clock that starts at a seed-dependent instant; every log time equals the
message's header stamp (or, for header-less strings, the instant it was produced), so bags of
one seed are byte-for-byte reproducible and stamps of different seeds do not collide.

The expert label is the scene's own expert grasp of the target (FrankaTabletopScene.expert_grasp:
across the narrow side of its bounding box, yaw folded by the shape's symmetry), read at each
frame's instant, so every pre-grasp frame is a labelled sample; the last frame's label is executed.
"""
from __future__ import annotations

import json
import math
import shutil
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from msvla_core.data.bag_types import msvla_typestore
from msvla_core.data.image import array_to_image_fields
from msvla_core.geometry import top_down_grasp_quaternion
from .camera import BASE_FRAME
from .instructions import resolve_instruction
from .referring import choose_target

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
GRASP_POSE = "msvla_msgs/msg/GraspPose"
TRANSFORM = "geometry_msgs/msg/TransformStamped"

TOPICS: dict[str, str] = {
    "/sim/scene": STRING,
    "/msvla/instruction": STRING,
    "/camera/color/image_raw": IMAGE,
    "/camera/color/camera_info": CAMERA_INFO,
    "/camera/depth/image_raw": IMAGE,
    "/camera/depth/camera_info": CAMERA_INFO,
    "/camera/extrinsics": TRANSFORM,
    "/joint_states": JOINT_STATE,
    "/msvla/grasp": GRASP_POSE,
    "/sim/grasp_outcome": STRING,
}

# Synthetic clock: 2020-09-13 plus one minute per seed, wrapped so that any 31-bit seed stays
# far inside int64 nanoseconds while neighbouring seeds never overlap (episodes last < 60 s).
_CLOCK_ORIGIN_S = 1_600_000_000
_CLOCK_SEEDS = 10_000_000
_CLOCK_SLOT_S = 60
EXPERT_MODEL_ID = "expert"


def episode_start_ns(seed: int) -> int:
    """First stamp of the episode recorded for `seed`."""
    return (_CLOCK_ORIGIN_S + (int(seed) % _CLOCK_SEEDS) * _CLOCK_SLOT_S) * 1_000_000_000


class _Messages:
    """Builds rosbags message objects of the type store and serialises them to CDR."""

    def __init__(self, store):
        self.store = store
        self.t = store.types

    def stamp(self, ns: int):
        return self.t["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def header(self, ns: int, frame_id: str):
        return self.t["std_msgs/msg/Header"](stamp=self.stamp(ns), frame_id=frame_id)

    def cdr(self, msg) -> bytes:
        return bytes(self.store.serialize_cdr(msg, msg.__msgtype__))

    def string(self, text: str):
        return self.t[STRING](data=text)

    def image(self, array: np.ndarray, encoding: str, ns: int, frame_id: str):
        fields = array_to_image_fields(array, encoding)
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        return self.t[IMAGE](header=self.header(ns, frame_id), **fields)

    def camera_info(self, camera, ns: int, frame_id: str):
        k = np.asarray(camera.K, dtype=np.float64)
        # Same content as the live node: no distortion, identity rectification, P = [K | 0].
        p = np.array([k[0, 0], 0.0, k[0, 2], 0.0, 0.0, k[1, 1], k[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0])
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                         do_rectify=False)
        return self.t[CAMERA_INFO](header=self.header(ns, frame_id), height=int(camera.height),
                                   width=int(camera.width), distortion_model="plumb_bob",
                                   d=np.zeros(5), k=k.ravel(), r=np.eye(3).ravel(), p=p,
                                   binning_x=0, binning_y=0, roi=roi)

    def transform(self, pose: list[float], ns: int, parent: str, child: str):
        """TransformStamped of a pose [x, y, z, qx, qy, qz, qw] of `child` in `parent`."""
        t = self.t
        translation = t["geometry_msgs/msg/Vector3"](x=float(pose[0]), y=float(pose[1]), z=float(pose[2]))
        rotation = t["geometry_msgs/msg/Quaternion"](x=float(pose[3]), y=float(pose[4]), z=float(pose[5]),
                                                     w=float(pose[6]))
        return t[TRANSFORM](header=self.header(ns, parent), child_frame_id=child,
                            transform=t["geometry_msgs/msg/Transform"](translation=translation,
                                                                      rotation=rotation))

    def joint_state(self, names, positions, velocities, ns: int, frame_id: str = ""):
        return self.t[JOINT_STATE](header=self.header(ns, frame_id), name=list(names),
                                   position=np.asarray(positions, dtype=np.float64),
                                   velocity=np.asarray(velocities, dtype=np.float64),
                                   effort=np.zeros(0))

    def grasp_pose(self, position, yaw: float, width: float, instruction: str, ns: int):
        q = top_down_grasp_quaternion(yaw)
        point = self.t["geometry_msgs/msg/Point"](x=float(position[0]), y=float(position[1]),
                                                  z=float(position[2]))
        orientation = self.t["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]),
                                                             z=float(q[2]), w=float(q[3]))
        pose = self.t["geometry_msgs/msg/Pose"](position=point, orientation=orientation)
        return self.t[GRASP_POSE](header=self.header(ns, BASE_FRAME), pose=pose, width=float(width),
                                  score=1.0, instruction=instruction, model_id=EXPERT_MODEL_ID)


def episode_dir(output: str | Path, seed: int) -> Path:
    return Path(output) / f"episode_{int(seed)}"


def prepare_episode_dirs(output: str | Path, seeds, overwrite: bool) -> str | None:
    """Make `output` ready for one bag per seed: existing episode bags are removed with `overwrite`,
    otherwise the first one is returned as the error to report (nothing is touched)."""
    existing = [episode_dir(output, s) for s in seeds if episode_dir(output, s).exists()]
    if existing and not overwrite:
        return f"{existing[0]} already exists (use --overwrite to replace)"
    for path in existing:
        shutil.rmtree(path)
    Path(output).mkdir(parents=True, exist_ok=True)
    return None


def episode_writer(stack: ExitStack, writer_or_path, storage: str):
    """An open Writer: the caller's, or a new bag at the given path closed when `stack` unwinds."""
    if isinstance(writer_or_path, (str, Path)):
        writer = open_writer(writer_or_path, storage)
        stack.callback(writer.close)
        return writer
    return writer_or_path


def open_writer(path: str | Path, storage: str = "mcap"):
    """An opened-for-writing rosbags Writer for a new bag directory (must not exist yet)."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
    if storage not in plugins:
        raise ValueError(f"storage must be one of {sorted(plugins)}, got {storage!r}")
    writer = Writer(Path(path), version=Writer.VERSION_LATEST, storage_plugin=plugins[storage])
    writer.open()
    return writer


def connections(writer, store, topics: dict[str, str]) -> dict:
    """One connection per topic (name -> message type); reuses the writer's existing ones so a
    shared writer works."""
    existing = {c.topic: c for c in writer.connections}
    out = {}
    for topic, msgtype in topics.items():
        conn = existing.get(topic)
        if conn is None:
            conn = writer.add_connection(topic, msgtype, typestore=store)
        elif conn.msgtype != msgtype:
            raise ValueError(f"writer already has {topic} as {conn.msgtype}, expected {msgtype}")
        out[topic] = conn
    return out


def record_episode(scene, seed: int, writer_or_path, rng: np.random.Generator, frames: int = 3,
                   rate_hz: float = 10.0, *, storage: str = "mcap", n_objects: int | None = None,
                   typestore=None, execute: bool = True, phrasing: str = "train") -> dict:
    """Reset `scene` with `seed`, pick a random target that an instruction can name (phrasings of
    `phrasing`: "train" or "heldout"), record `frames` sensor frames at `rate_hz`, each with the
    expert's label, then execute the last label and record the outcome.

    `writer_or_path`: an open rosbags Writer (connections are added or reused) or the path of a
    new bag directory written with `storage` ("mcap" or "sqlite3") and closed on return.
    `rng` draws the target and the phrasing; pass one seeded from `seed` for reproducible bags.
    Returns a summary: seed, instruction, target, label (of the last frame), success, start_ns,
    label_stamp_ns.
    """
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a positive finite number, got {rate_hz}")
    store = typestore if typestore is not None else msvla_typestore()
    m = _Messages(store)
    with ExitStack() as stack:
        writer = episode_writer(stack, writer_or_path, storage)
        conns = connections(writer, store, TOPICS)

        def write(topic: str, msg, ns: int) -> None:
            writer.write(conns[topic], ns, m.cdr(msg))

        description = scene.reset(int(seed), n_objects)
        description["episode"] = int(seed)
        target, instruction = choose_target(description, rng, phrasing)
        period_ns = int(round(1e9 / rate_hz))
        steps_per_frame = max(1, int(round(scene.physics_hz / rate_hz)))
        start = episode_start_ns(seed)
        write("/sim/scene", m.string(json.dumps(description)), start)
        write("/msvla/instruction", m.string(instruction), start)
        camera_frame = description["camera"]["frame_id"]
        write("/camera/extrinsics", m.transform(description["camera_to_base"], start, BASE_FRAME,
                                                camera_frame), start)

        ns, grasp = start, None
        for i in range(int(frames)):
            if i:
                # Advance the physics by one camera period so frames are real successive samples.
                scene.step(steps_per_frame)
            ns = start + i * period_ns
            rgb, depth, camera = scene.render()
            frame = camera.frame_id
            info = m.camera_info(camera, ns, frame)
            # intrinsics first: a reader can only use a depth image once it knows its camera
            write("/camera/color/camera_info", info, ns)
            write("/camera/depth/camera_info", info, ns)
            write("/camera/color/image_raw", m.image(rgb, "rgb8", ns, frame), ns)
            write("/camera/depth/image_raw", m.image(depth.astype(np.float32), "32FC1", ns, frame), ns)
            names, positions, velocities = scene.joint_state()
            write("/joint_states", m.joint_state(names, positions, velocities, ns), ns)
            # The label answers this frame, like a model's grasp computed from this image; the
            # target's pose is read at this instant in case it moved since the last frame.
            grasp = scene.expert_grasp(target["name"])
            write("/msvla/grasp", m.grasp_pose(grasp["position"], grasp["yaw"], grasp["width"],
                                              instruction, ns), ns)

        summary = {"seed": int(seed), "instruction": instruction, "target": target["name"],
                   "label": {k: grasp[k] for k in ("position", "yaw", "width")},
                   "start_ns": start, "label_stamp_ns": ns, "success": None}
        if execute:
            outcome = scene.execute_grasp(grasp["position"], grasp["yaw"], grasp["width"])
            resolved = resolve_instruction(instruction, description)
            result = {"episode": int(seed), "seed": int(seed), "instruction": instruction,
                      "target": target["name"], "resolved": resolved,
                      "success": bool(outcome.success_for(target["name"])),
                      "grasp_stamp_ns": ns, **outcome.to_dict()}
            # Wall-clock time would make bags of one seed differ between runs.
            result.pop("duration_s", None)
            write("/sim/grasp_outcome", m.string(json.dumps(result)), ns + period_ns)
            summary["success"] = result["success"]
    return summary
