"""Record scripted-expert driving episodes of the vehicle scene as rosbag2 bags, without ROS.

Each episode is written with the live vehicle graph's topics, message types, encodings and frames
(see vehicle_sim_node), so offline tools read recorded and live data the same way:

  /sim/scene                  std_msgs/msg/String           JSON scene description, once
  /camera/extrinsics          geometry_msgs/msg/TransformStamped  base_link -> camera optical frame, once
  /msvla/instruction          std_msgs/msg/String           once, at the start
  /camera/color/camera_info   sensor_msgs/msg/CameraInfo    10 Hz, front_camera_optical_frame
  /camera/color/image_raw     sensor_msgs/msg/Image         10 Hz, rgb8 128x96 (the scene's camera)
  /lidar/points               sensor_msgs/msg/PointCloud2   10 Hz, x, y, z, intensity float32, lidar_link
  /radar/targets              sensor_msgs/msg/PointCloud2   20 Hz, range, azimuth, radial_velocity, rcs
                                                            float32, radar_link
  /imu/data                   sensor_msgs/msg/Imu           100 Hz, imu_link, no orientation
  /odom                       nav_msgs/msg/Odometry         50 Hz, odom -> base_link
  /joint_states               sensor_msgs/msg/JointState    50 Hz, base_link: steering angle, wheel spin
  /msvla/vehicle/command      msvla_msgs/msg/VehicleCommand 10 Hz, the expert's command: the label of
                              the control head (frame base_link, model_id "expert", stamp = the
                              camera frame's stamp: the state it was computed from). It is the
                              expert's clean answer; what the car executes may be perturbed (below)
  /label/trajectory           nav_msgs/msg/Path             10 Hz, the trajectory head's label (below)
  /sim/vehicle_status         std_msgs/msg/String           JSON episode status, once, at the end

Trajectory label: for every command, the positions the car actually reached over the next
TRAJECTORY_HORIZON * TRAJECTORY_DT_S = 20 * 0.1 s = 2 s, in base_link *at the label's instant*
(x forward, y left; z = 0; orientation = the yaw relative to that base_link). header.stamp and
frame_id equal the command's; poses[j].header.stamp is the waypoint's own instant, label stamp +
(j + 1) * 0.1 s. The waypoints are (B, T=20, 2) `waypoints` of the trajectory head
(poses[j].pose.position.x, .y). Since the future is only known after the fact, a label is written
when its last waypoint has happened (log time = label stamp + 2 s, header stamp = the label's
instant; readers look labels up by header stamp). After an episode that ends at its time limit or
at route completion the expert keeps driving for the horizon, unrecorded, so every label has all
20 waypoints; after a collision nothing past the contact is a demonstration, so the labels of the
last 2 s are cut at the collision instant and carry fewer poses (the head's `valid` mask).

Control timing and perturbations: the expert decides at each camera frame (10 Hz, the live graph's
control rate) and its command takes effect `command_delay_s` later (the live graph's sensor ->
command latency) and is held until the next one, so demonstrations see the timing the learnt
policy will drive with. With `steering_noise_rad` > 0 the executed steering is the expert's plus
an Ornstein-Uhlenbeck perturbation (std drawn per episode in [0, steering_noise_rad]), and the car
may start moving (`max_initial_speed_mps`): the recorded commands stay the expert's clean answers
to the states it was pushed into, so a policy learns to recover from the drift its own errors
cause (noise injection into demonstrations; a cloned policy without it never sees such states).
Forced stops (`forced_stops_per_min`, `stop_for_crossing`) brake the car to a standstill and hold
it there for a while, at random times and when a pedestrian ahead starts to cross, as the safety
shield does in closed loop; the labels stay the expert's, which drives on once the way is clear, so
the policy sees how to move off again after a stop it did not choose.

Time is the synthetic clock of msvla_sim.recording (episode_start_ns(seed)): the physics runs at
physics_hz (100 Hz by default, as the live node) and every sensor is sampled at the physics
instants that are multiples of its period, with its header stamp = log time = that instant. Bags
of one seed are byte-for-byte reproducible.
"""
from __future__ import annotations

import json
import math
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np

from msvla_core.data.bag_types import msvla_typestore
from msvla_core.data.pointcloud import array_to_pointcloud_fields
from .recording import (CAMERA_INFO, IMAGE, STRING, TRANSFORM, _Messages, connections, episode_start_ns,
                        episode_writer)
from .vehicle_expert import INSTRUCTION_KINDS, VehicleExpert, sample_instruction
from .vehicle_scene import BASE_FRAME, CAMERA_FRAME, LIDAR_FRAME, ODOM_FRAME, RADAR_FRAME, wrap_angle

POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
IMU = "sensor_msgs/msg/Imu"
ODOMETRY = "nav_msgs/msg/Odometry"
PATH = "nav_msgs/msg/Path"
VEHICLE_COMMAND = "msvla_msgs/msg/VehicleCommand"

# As vehicle_sim_node (which is not imported here: it needs rclpy).
IMU_FRAME = "imu_link"
LIDAR_FIELDS = ("x", "y", "z", "intensity")
RADAR_FIELDS = ("range", "azimuth", "radial_velocity", "rcs")

COMMAND_TOPIC = "/msvla/vehicle/command"
TRAJECTORY_TOPIC = "/label/trajectory"
STATUS_TOPIC = "/sim/vehicle_status"

JOINT_STATE = "sensor_msgs/msg/JointState"

TOPICS: dict[str, str] = {
    "/sim/scene": STRING,
    "/camera/extrinsics": TRANSFORM,
    "/msvla/instruction": STRING,
    "/camera/color/camera_info": CAMERA_INFO,
    "/camera/color/image_raw": IMAGE,
    "/lidar/points": POINT_CLOUD,
    "/radar/targets": POINT_CLOUD,
    "/imu/data": IMU,
    "/odom": ODOMETRY,
    "/joint_states": JOINT_STATE,
    COMMAND_TOPIC: VEHICLE_COMMAND,
    TRAJECTORY_TOPIC: PATH,
    STATUS_TOPIC: STRING,
}

# Sample rates of the live node's defaults (vehicle_sim_node.PARAMS); each must divide the physics
# rate, so every sample falls on a physics instant.
PHYSICS_HZ = 100.0
SENSOR_RATES_HZ: dict[str, float] = {"camera": 10.0, "lidar": 10.0, "radar": 20.0, "imu": 100.0,
                                     "odom": 50.0}
COMMAND_RATE_HZ = 10.0
TRAJECTORY_HORIZON = 20      # waypoints, the trajectory head's default horizon
TRAJECTORY_DT_S = 0.1        # between waypoints
EXPERT_MODEL_ID = "expert"
# Episodes of neighbouring seeds start 60 s apart on the synthetic clock (recording.episode_start_ns);
# an episode plus its trajectory horizon must fit in that slot.
MAX_EPISODE_S = 55.0


@dataclass(frozen=True)
class Perturbation:
    """How the executed commands of an episode differ from the expert's labels."""

    command_delay_s: float = 0.07        # expert decision (camera frame) -> command applied
    steering_noise_rad: float = 0.0      # upper end of the per-episode OU steering noise std
    noise_time_constant_s: float = 0.8   # correlation time of the OU perturbation
    max_initial_speed_mps: float = 0.0   # initial speed drawn in [0, this]
    forced_stops_per_min: float = 0.0    # mean rate of forced stops at random times
    stop_for_crossing: float = 0.0       # probability of a forced stop when a pedestrian ahead starts to cross
    stop_hold_s: tuple[float, float] = (0.5, 4.0)  # standstill held, drawn per stop

    def __post_init__(self):
        for name in ("command_delay_s", "steering_noise_rad", "max_initial_speed_mps", "forced_stops_per_min"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        if not (math.isfinite(self.noise_time_constant_s) and self.noise_time_constant_s > 0.0):
            raise ValueError(f"noise_time_constant_s must be > 0, got {self.noise_time_constant_s}")
        if not 0.0 <= self.stop_for_crossing <= 1.0:
            raise ValueError(f"stop_for_crossing must be a probability in [0, 1], got {self.stop_for_crossing}")
        lo, hi = self.stop_hold_s
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo <= hi):
            raise ValueError(f"stop_hold_s must be (low, high) with 0 <= low <= high, got {self.stop_hold_s}")


class SteeringNoise:
    """Ornstein-Uhlenbeck steering perturbation, stepped once per expert decision."""

    def __init__(self, rng: np.random.Generator, std_rad: float, time_constant_s: float, dt_s: float):
        self.rng, self.std = rng, float(std_rad)
        self.decay = math.exp(-dt_s / time_constant_s)
        self.value = float(rng.normal(0.0, self.std)) if self.std > 0.0 else 0.0

    def step(self) -> float:
        if self.std > 0.0:
            self.value = self.decay * self.value + self.std * math.sqrt(1.0 - self.decay ** 2) * \
                float(self.rng.normal())
        return self.value


class ForcedStops:
    """Full-brake interruptions of the executed command, stepped once per expert decision: a stop
    starts at random (Poisson, `per_min`) or, with probability `crossing_prob`, when a pedestrian
    within `ahead_m` ahead starts to cross; it brakes until the car stands and holds it standing
    for a time drawn from `hold_s`."""

    STOPPED_MPS = 0.1

    def __init__(self, rng: np.random.Generator, per_min: float, crossing_prob: float,
                 hold_s: tuple[float, float], ahead_m: float = 40.0):
        self.rng, self.rate_hz, self.crossing_prob = rng, per_min / 60.0, crossing_prob
        self.hold_s, self.ahead_m = hold_s, ahead_m
        self.active = False
        self.hold_left_s = 0.0
        self.count = 0
        self._seen_crossing: set[int] = set()

    def step(self, scene: VehicleScene, dt_s: float) -> bool:
        """Whether the executed command is a full brake for this decision period."""
        if self.active:
            if scene.vehicle_state().speed_mps < self.STOPPED_MPS:
                self.hold_left_s -= dt_s
            self.active = self.hold_left_s > 0.0
            return self.active
        start = self.rate_hz > 0.0 and self.rng.random() < self.rate_hz * dt_s
        ego_s = scene.status().route_s_m
        for ob in scene.obstacle_states():
            if (ob.kind == "crossing" and ob.phase == "walking" and ob.id not in self._seen_crossing
                    and 0.0 < ob.route_s - ego_s < self.ahead_m):
                self._seen_crossing.add(ob.id)
                start |= self.crossing_prob > 0.0 and self.rng.random() < self.crossing_prob
        if start:
            self.active, self.count = True, self.count + 1
            self.hold_left_s = float(self.rng.uniform(*self.hold_s))
        return self.active


def episode_rng(seed: int) -> np.random.Generator:
    """Instruction stream of an episode; separate from the scene's route/obstacle/radar streams
    (VehicleScene.reset uses [seed, 1..3])."""
    return np.random.default_rng([int(seed), 4])


def choose_instruction(rng: np.random.Generator, kinds: Sequence[str] | None = None) -> tuple[str, str]:
    """(kind, text) of a random kind among `kinds` (default: all) and a random phrasing of it; with
    all kinds this draws exactly as sample_instruction(rng)."""
    kinds = tuple(INSTRUCTION_KINDS if not kinds else kinds)
    unknown = [k for k in kinds if k not in INSTRUCTION_KINDS]
    if unknown:
        raise ValueError(f"unknown instruction kind(s) {unknown}; expected some of {INSTRUCTION_KINDS}")
    return sample_instruction(rng, kinds[int(rng.integers(len(kinds)))])


def _period_steps(rate_hz: float, physics_hz: float, what: str) -> int:
    steps = physics_hz / rate_hz
    n = int(round(steps))
    if n < 1 or abs(steps - n) > 1e-9:
        raise ValueError(f"{what} rate {rate_hz} Hz must divide the physics rate {physics_hz} Hz")
    return n


class _VehicleMessages(_Messages):
    """The Franka recorder's message builder plus the vehicle graph's types."""

    def vector3(self, x: float, y: float, z: float):
        return self.t["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))

    def quaternion_yaw(self, yaw: float):
        return self.t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(0.5 * yaw),
                                                      w=math.cos(0.5 * yaw))

    def pose(self, x: float, y: float, yaw: float):
        point = self.t["geometry_msgs/msg/Point"](x=float(x), y=float(y), z=0.0)
        return self.t["geometry_msgs/msg/Pose"](position=point, orientation=self.quaternion_yaw(yaw))

    def cloud(self, points: np.ndarray, names: Sequence[str], ns: int, frame_id: str):
        columns = {name: np.ascontiguousarray(points[:, i], dtype=np.float32) for i, name in enumerate(names)}
        fields = array_to_pointcloud_fields(columns)
        point_field = self.t["sensor_msgs/msg/PointField"]
        fields["fields"] = [point_field(**f) for f in fields["fields"]]
        fields["data"] = np.frombuffer(fields["data"], dtype=np.uint8)
        return self.t[POINT_CLOUD](header=self.header(ns, frame_id), **fields)

    def imu(self, accel: np.ndarray, gyro: np.ndarray, ns: int):
        orientation_cov = np.zeros(9)
        orientation_cov[0] = -1.0  # no orientation estimate, as the live node
        return self.t[IMU](header=self.header(ns, IMU_FRAME),
                           orientation=self.t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
                           orientation_covariance=orientation_cov,
                           angular_velocity=self.vector3(*gyro), angular_velocity_covariance=np.zeros(9),
                           linear_acceleration=self.vector3(*accel),
                           linear_acceleration_covariance=np.zeros(9))

    def odometry(self, odo, ns: int):
        t = self.t
        pose = t["geometry_msgs/msg/PoseWithCovariance"](pose=self.pose(odo.x, odo.y, odo.yaw),
                                                         covariance=np.zeros(36))
        twist = t["geometry_msgs/msg/Twist"](linear=self.vector3(odo.speed_mps, 0.0, 0.0),
                                             angular=self.vector3(0.0, 0.0, odo.yaw_rate_radps))
        return t[ODOMETRY](header=self.header(ns, ODOM_FRAME), child_frame_id=BASE_FRAME, pose=pose,
                           twist=t["geometry_msgs/msg/TwistWithCovariance"](twist=twist,
                                                                             covariance=np.zeros(36)))

    def vehicle_command(self, steering: float, throttle: float, brake: float, ns: int):
        return self.t[VEHICLE_COMMAND](header=self.header(ns, BASE_FRAME), steering=float(steering),
                                       throttle=float(throttle), brake=float(brake),
                                       model_id=EXPERT_MODEL_ID)

    def path(self, waypoints: np.ndarray, ns: int, dt_ns: int):
        """Path in base_link; waypoints (T, 3) x, y, yaw; pose j stamped ns + (j + 1) * dt_ns."""
        stamped = self.t["geometry_msgs/msg/PoseStamped"]
        poses = [stamped(header=self.header(ns + (j + 1) * dt_ns, BASE_FRAME), pose=self.pose(*w))
                 for j, w in enumerate(waypoints)]
        return self.t[PATH](header=self.header(ns, BASE_FRAME), poses=poses)


def trajectory_in_base(history: np.ndarray, k: int, step: int, horizon: int, last: int) -> np.ndarray:
    """Waypoints (<= horizon, 3): x, y, yaw of the poses at physics steps k + step, k + 2 step, ...
    (not past `last`) in the base frame of the pose at step k. history: (N, 3) x, y, yaw in odom."""
    idx = np.arange(1, horizon + 1) * step + k
    idx = idx[idx <= last]
    x0, y0, yaw0 = history[k]
    c, s = math.cos(yaw0), math.sin(yaw0)
    d = history[idx, :2] - (x0, y0)
    out = np.empty((len(idx), 3))
    out[:, 0] = c * d[:, 0] + s * d[:, 1]
    out[:, 1] = -s * d[:, 0] + c * d[:, 1]
    out[:, 2] = [wrap_angle(y - yaw0) for y in history[idx, 2]]
    return out


def record_vehicle_episode(scene, seed: int, writer_or_path, rng: np.random.Generator, *,
                           seconds: float = 20.0, kinds: Sequence[str] | None = None,
                           storage: str = "mcap", n_static: int | None = None,
                           n_moving: int | None = None, in_lane_fraction: float = 0.5,
                           perturbation: Perturbation = Perturbation(), typestore=None) -> dict:
    """Reset `scene` with `seed`, draw an instruction from `rng` (kinds among `kinds`), drive it with
    VehicleExpert in closed loop at the scene's physics rate and record sensors and labels until
    route completion, collision or `seconds` of simulated time. `in_lane_fraction` goes to
    VehicleScene.reset; `perturbation` sets the command timing and the injected noise (module doc).

    `writer_or_path`: an open rosbags Writer (connections are added or reused) or the path of a new
    bag directory written with `storage` ("mcap" or "sqlite3") and closed on return. `scene` must
    have a physics rate that the sensor, command and waypoint rates divide (e.g. 100 Hz).
    Returns a summary: seed, kind, instruction, progress_fraction, collision, route_complete,
    lane_departure_steps, seconds, end, start_ns, counts (messages per topic).
    """
    if not (math.isfinite(seconds) and 0.0 < seconds <= MAX_EPISODE_S):
        raise ValueError(f"seconds must be in (0, {MAX_EPISODE_S}], got {seconds}")
    physics_hz = 1.0 / scene.physics_dt_s
    periods = {name: _period_steps(rate, physics_hz, name) for name, rate in SENSOR_RATES_HZ.items()}
    cmd_every = _period_steps(COMMAND_RATE_HZ, physics_hz, "command")
    wp_every = _period_steps(1.0 / TRAJECTORY_DT_S, physics_hz, "trajectory waypoint")
    horizon_steps = wp_every * TRAJECTORY_HORIZON
    dt_ns = int(round(scene.physics_dt_s * 1e9))
    max_steps = int(round(seconds * physics_hz))
    delay_steps = int(round(perturbation.command_delay_s * physics_hz))
    if delay_steps >= cmd_every:
        raise ValueError(f"command_delay_s={perturbation.command_delay_s} must be shorter than the command period "
                         f"{1.0 / COMMAND_RATE_HZ} s")

    store = typestore if typestore is not None else msvla_typestore()
    m = _VehicleMessages(store)
    counts = {topic: 0 for topic in TOPICS}
    with ExitStack() as stack:
        writer = episode_writer(stack, writer_or_path, storage)
        conns = connections(writer, store, TOPICS)

        def write(topic: str, msg, ns: int) -> None:
            writer.write(conns[topic], ns, m.cdr(msg))
            counts[topic] += 1

        noise_rng = np.random.default_rng([int(seed), 5])  # apart from the instruction stream
        initial_speed = float(noise_rng.uniform(0.0, perturbation.max_initial_speed_mps))
        description = scene.reset(int(seed), n_static, n_moving, in_lane_fraction=in_lane_fraction,
                                  initial_speed_mps=initial_speed)
        noise = SteeringNoise(noise_rng, noise_rng.uniform(0.0, perturbation.steering_noise_rad),
                              perturbation.noise_time_constant_s, 1.0 / COMMAND_RATE_HZ)
        stops = ForcedStops(np.random.default_rng([int(seed), 6]), perturbation.forced_stops_per_min,
                            perturbation.stop_for_crossing, perturbation.stop_hold_s)
        kind, text = choose_instruction(rng, kinds)
        expert = VehicleExpert(kind)
        start = episode_start_ns(seed)
        description["episode"] = int(seed)
        description["stamp_ns"] = start
        description["sensors"][IMU_FRAME] = {"parent": BASE_FRAME, "xyz_quat": [0.0] * 6 + [1.0]}
        write("/sim/scene", m.string(json.dumps(description)), start)
        mount = description["sensors"][CAMERA_FRAME]
        write("/camera/extrinsics", m.transform(mount["xyz_quat"], start, mount["parent"], CAMERA_FRAME), start)
        write("/msvla/instruction", m.string(text), start)

        history = []           # (x, y, yaw) in odom at every physics step
        pending = deque()      # physics steps of commands whose trajectory label is not written yet

        def pose_now():
            st = scene.vehicle_state()
            history.append((st.x, st.y, st.yaw))

        def flush_labels(k_now: int, final: bool) -> None:
            """Write the trajectory labels whose horizon has passed at step k_now (all if final)."""
            hist = None
            while pending and (final or pending[0] + horizon_steps <= k_now):
                if hist is None:
                    hist = np.asarray(history)
                k = pending.popleft()
                waypoints = trajectory_in_base(hist, k, wp_every, TRAJECTORY_HORIZON, k_now)
                write(TRAJECTORY_TOPIC, m.path(waypoints, start + k * dt_ns, wp_every * dt_ns),
                      start + k_now * dt_ns)

        k = 0
        pose_now()
        last_cmd = (0.0, 0.0, 0.0)
        queued = None  # (physics step it takes effect, command)
        while True:
            ns = start + k * dt_ns
            if k % periods["camera"] == 0:
                rgb, _, kmat = scene.render_camera()
                cam = SimpleNamespace(K=kmat, width=rgb.shape[1], height=rgb.shape[0])
                write("/camera/color/camera_info", m.camera_info(cam, ns, CAMERA_FRAME), ns)
                write("/camera/color/image_raw", m.image(rgb, "rgb8", ns, CAMERA_FRAME), ns)
            if k % periods["lidar"] == 0:
                write("/lidar/points", m.cloud(scene.lidar_scan(), LIDAR_FIELDS, ns, LIDAR_FRAME), ns)
            if k % periods["radar"] == 0:
                write("/radar/targets", m.cloud(scene.radar_targets(), RADAR_FIELDS, ns, RADAR_FRAME), ns)
            if k % periods["imu"] == 0:
                write("/imu/data", m.imu(*scene.imu(), ns), ns)
            if k % periods["odom"] == 0:
                write("/odom", m.odometry(scene.odometry(), ns), ns)
                names, position, velocity = scene.joint_state()
                write("/joint_states", m.joint_state(names, position, velocity, ns, BASE_FRAME), ns)
            status = scene.status()
            if status.done or k >= max_steps:
                break
            if k % cmd_every == 0:
                label = expert.command(scene)
                write(COMMAND_TOPIC, m.vehicle_command(*label, ns), ns)
                pending.append(k)
                steering = float(np.clip(label[0] + noise.step(), -scene.vehicle.max_steering_rad,
                                         scene.vehicle.max_steering_rad))
                pedals = (0.0, 1.0) if stops.step(scene, 1.0 / COMMAND_RATE_HZ) else tuple(label[1:])
                queued = (k + delay_steps, (steering,) + pedals)
            if queued is not None and k >= queued[0]:
                last_cmd = scene.apply_command(*queued[1])
                queued = None
            scene.step()
            k += 1
            pose_now()
            flush_labels(k, final=False)

        end_k = k
        end = ("collision" if status.collision else "route_complete" if status.route_complete
               else "time_limit")
        report = {"episode": int(seed), "seed": int(seed), "stamp_ns": start + end_k * dt_ns,
                  **status.to_dict(), "end": end, "instruction": text, "instruction_kind": kind,
                  "command": {"steering": last_cmd[0], "throttle": last_cmd[1], "brake": last_cmd[2],
                              "model_id": EXPERT_MODEL_ID, "source": "expert"}}
        write(STATUS_TOPIC, m.string(json.dumps(report)), start + end_k * dt_ns)

        # The rest of the trajectory labels: the expert drives on, unrecorded, for the horizon
        # (never past a collision: what follows a contact is no demonstration).
        if not status.collision:
            while pending and not scene.status().collision:
                scene.apply_command(*expert.command(scene))
                scene.step()
                k += 1
                pose_now()
                flush_labels(k, final=False)
        flush_labels(k, final=True)

    return {"seed": int(seed), "kind": kind, "instruction": text,
            "progress_fraction": round(float(status.progress_fraction), 4),
            "collision": bool(status.collision), "route_complete": bool(status.route_complete),
            "lane_departure_steps": int(status.lane_departure_steps),
            "seconds": round(end_k * scene.physics_dt_s, 3), "end": end, "start_ns": start,
            "forced_stops": stops.count, "counts": counts}
