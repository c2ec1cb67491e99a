"""ROS-free PyBullet driving scene: a seeded road course, static and moving obstacles, a kinematic
car and its sensors (front camera, roof LiDAR, front radar, IMU, odometry).

Frames (REP-103 / REP-105): the world frame is ``odom`` (z up, the ground is the plane z = 0, the
route starts at the origin heading along +x). ``base_link`` sits on the ground under the centre of
the rear axle, x forward, y left, z up. Every sensor reports in its own frame, mounted at a fixed
pose in ``base_link`` (``MountPose``); the camera reports in its optical frame (z forward, x right,
y down). The IMU sits at ``base_link``.

The car is a kinematic bicycle model integrated at a fixed physics step rather than a simulated
multibody: its motion is then exactly reproducible from a seed, does not depend on contact
parameters, and costs microseconds per step. Its pose is pushed into PyBullet after every step so
that renders, ray casts and proximity queries see it. Obstacles are moved kinematically too; the
physics engine is used only as a geometry server (rendering, rays, closest points).

Each scene owns its own PyBullet client (DIRECT by default) and passes the client id to every
call, so several scenes can coexist in one process.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from msvla_core.geometry import matrix_to_quaternion

from .physics_client import OwnsPhysicsClient
from .camera import RenderCamera

ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
CAMERA_FRAME = "front_camera_optical_frame"
LIDAR_FRAME = "lidar_link"
RADAR_FRAME = "radar_link"
IMU_FRAME = BASE_FRAME
# Joints of /joint_states: the front road-wheel steering angle and the rear axle's wheel rotation.
JOINT_NAMES = ("front_steering_joint", "rear_wheel_joint")

GRAVITY = 9.81

# Collision filter groups: rays (LiDAR) and proximity checks see the world but never the ego body.
_WORLD_GROUP = 1
_EGO_GROUP = 2

# Heights of the road's visual layers above the ground plane: far enough apart that the
# renderer's depth buffer keeps them in order at the far end of the camera's range.
_ROAD_Z = 0.02
_MARKING_Z = 0.04

_GROUND_RGBA = (0.36, 0.50, 0.30, 1.0)
_ROAD_RGBA = (0.22, 0.22, 0.24, 1.0)
_MARKING_RGBA = (0.95, 0.95, 0.95, 1.0)
_EGO_RGBA = (0.15, 0.30, 0.75, 1.0)
_OBSTACLE_PALETTE: Tuple[Tuple[str, Tuple[float, float, float, float]], ...] = (
    ("red", (0.85, 0.15, 0.12, 1.0)), ("orange", (0.95, 0.55, 0.10, 1.0)),
    ("yellow", (0.92, 0.85, 0.15, 1.0)), ("blue", (0.15, 0.35, 0.90, 1.0)),
    ("purple", (0.55, 0.25, 0.75, 1.0)), ("white", (0.92, 0.92, 0.92, 1.0)),
)
_GROUND_REFLECTIVITY = 0.15


def wrap_angle(a: float) -> float:
    """Angle folded into [-pi, pi)."""
    return (float(a) + math.pi) % (2.0 * math.pi) - math.pi


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _yaw_quaternion(yaw: float) -> Tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw))


# ---------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class MountPose:
    """Pose of a sensor frame in ``base_link``: translation (m) and roll, pitch, yaw (rad, REP-103:
    a positive pitch tilts the sensor's x axis down)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    roll: float = 0.0
    pitch: float = 0.0
    yaw: float = 0.0

    def rotation(self) -> np.ndarray:
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        rx = np.array([[1.0, 0.0, 0.0], [0.0, cr, -sr], [0.0, sr, cr]])
        ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
        return _rot_z(self.yaw) @ ry @ rx

    def matrix(self) -> np.ndarray:
        t = np.eye(4)
        t[:3, :3] = self.rotation()
        t[:3, 3] = (self.x, self.y, self.z)
        return t

    def xyz_quat(self) -> List[float]:
        """[x, y, z, qx, qy, qz, qw], the layout of the safety shield's ``*_to_base`` parameters."""
        q = matrix_to_quaternion(self.rotation())
        return [float(self.x), float(self.y), float(self.z)] + [float(v) for v in q]


# Turns a camera body frame (x forward, y left, z up) into its optical frame (z forward, x right,
# y down): columns are the optical axes expressed in the body frame.
_BODY_TO_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class VehicleParams:
    """Geometry and longitudinal/lateral actuation of the ego car.

    The pedal model is the safety shield's: a = throttle * throttle_accel - brake * brake_decel,
    so a command the shield lets through produces the acceleration the shield assumed.
    """

    wheelbase_m: float = 2.7
    length_m: float = 4.5
    width_m: float = 1.8
    height_m: float = 1.5
    rear_overhang_m: float = 0.9        # rear bumper behind the rear axle (base_link)
    ground_clearance_m: float = 0.15
    max_steering_rad: float = 0.6
    steering_time_constant_s: float = 0.1  # first-order lag of the steering actuator
    throttle_accel_mps2: float = 3.0
    brake_decel_mps2: float = 8.0
    rolling_resistance_mps2: float = 0.15  # ~ c_rr 0.015 * g, opposes motion only
    max_speed_mps: float = 30.0
    wheel_radius_m: float = 0.33

    @property
    def front_overhang_m(self) -> float:
        return self.length_m - self.rear_overhang_m - self.wheelbase_m

    @property
    def front_bumper_x_m(self) -> float:
        """Distance from base_link forward to the front bumper."""
        return self.length_m - self.rear_overhang_m

    @property
    def centre_x_m(self) -> float:
        """Geometric centre of the body box along x in base_link."""
        return 0.5 * self.length_m - self.rear_overhang_m


@dataclass(frozen=True)
class FrontCameraSpec:
    """Front camera: body-frame mount (x forward) in base_link, pinhole image and clip planes."""

    mount: MountPose = MountPose(x=1.0, z=1.5, pitch=0.08)
    width: int = 128
    height: int = 96
    fov_y_deg: float = 50.0
    near_m: float = 0.2
    far_m: float = 120.0


@dataclass(frozen=True)
class LidarSpec:
    """Spinning LiDAR: one ring per elevation, ``n_azimuth`` rays per ring over 360 degrees."""

    mount: MountPose = MountPose(z=1.8)
    n_azimuth: int = 360
    elevations_deg: Tuple[float, ...] = (-15.0, -11.0, -8.0, -5.5, -3.5, -2.0, -0.5, 1.0)
    min_range_m: float = 0.5
    max_range_m: float = 50.0


@dataclass(frozen=True)
class RadarSpec:
    """2-D front radar: targets within +-fov/2 of its x axis and max range, one per obstacle,
    measured at the point of the obstacle's footprint nearest to the sensor. Noise is Gaussian
    with the given standard deviations, seeded by ``VehicleScene.reset``."""

    mount: MountPose = MountPose(x=3.6, z=0.5)
    fov_deg: float = 90.0
    min_range_m: float = 0.3
    max_range_m: float = 80.0
    range_noise_m: float = 0.05
    azimuth_noise_rad: float = 0.004
    velocity_noise_mps: float = 0.05
    rcs_noise_db: float = 1.0
    rcs_offset_dbsm: float = 5.0  # added to 10 log10(frontal area): painted metal-ish returns


@dataclass(frozen=True)
class CourseParams:
    """Random road generation: a straight lead-in, then straights and constant-radius arcs."""

    lead_in_m: float = 20.0
    spacing_m: float = 0.5
    straight_m: Tuple[float, float] = (10.0, 30.0)
    radius_m: Tuple[float, float] = (20.0, 50.0)
    turn_deg: Tuple[float, float] = (25.0, 90.0)
    arc_probability: float = 0.6
    self_clearance_m: float = 20.0  # non-neighbouring parts of the road stay this far apart
    edge_line_width_m: float = 0.15
    shoulder_m: float = 0.5         # asphalt beyond each edge line


# ---------------------------------------------------------------------------------------- route
@dataclass
class Route:
    """Centreline of the road as a polyline sampled every ``spacing_m``; lateral offsets are
    positive to the left of the direction of travel."""

    points: np.ndarray      # (N, 2) x, y in odom
    s: np.ndarray           # (N,) arc length at each point
    headings: np.ndarray    # (N,) direction of travel at each point
    curvature: np.ndarray   # (N,) signed curvature (positive: turning left)
    lane_width_m: float
    segments: List[dict] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        return float(self.s[-1])

    @staticmethod
    def from_segments(segments: Sequence[dict], spacing_m: float, lane_width_m: float) -> "Route":
        """Integrate (length, curvature) segments from the origin heading +x. Each sampling
        interval takes the curvature of the segment its midpoint falls in, so the total length is
        exact and each interval is an exact arc."""
        ends = np.cumsum([float(sg["length_m"]) for sg in segments])
        n = max(1, int(round(ends[-1] / spacing_m)))
        ds = float(spacing_m)
        mids = (np.arange(n) + 0.5) * ds
        which = np.minimum(np.searchsorted(ends, mids), len(segments) - 1)
        k = np.array([float(sg["curvature"]) for sg in segments])[which]
        dpsi = k * ds
        head = np.concatenate([[0.0], np.cumsum(dpsi)])
        chord = ds * np.sinc(dpsi / (2.0 * math.pi))  # 2 sin(dpsi / 2) / kappa; ds on straights
        mid = head[:-1] + 0.5 * dpsi
        steps = chord[:, None] * np.stack([np.cos(mid), np.sin(mid)], axis=1)
        pts = np.vstack([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        curv = np.concatenate([k, k[-1:]])
        s = np.arange(n + 1) * ds
        return Route(pts, s, head, curv, float(lane_width_m), [dict(sg) for sg in segments])

    def pose_at(self, s: float) -> Tuple[np.ndarray, float]:
        """Centreline point and heading at arc length s; beyond either end the road is extended
        straight along the end heading (for look-ahead past the goal)."""
        s = float(s)
        if s <= 0.0:
            h = float(self.headings[0])
            return self.points[0] + s * np.array([math.cos(h), math.sin(h)]), h
        if s >= self.length_m:
            h = float(self.headings[-1])
            return self.points[-1] + (s - self.length_m) * np.array([math.cos(h), math.sin(h)]), h
        i = min(int(s / (self.s[1] - self.s[0])), len(self.s) - 2)
        t = (s - self.s[i]) / (self.s[i + 1] - self.s[i])
        p = (1.0 - t) * self.points[i] + t * self.points[i + 1]
        dh = wrap_angle(self.headings[i + 1] - self.headings[i])
        return p, float(self.headings[i] + t * dh)

    def normal_at(self, s: float) -> np.ndarray:
        h = self.pose_at(s)[1]
        return np.array([-math.sin(h), math.cos(h)])

    def project(self, xy: Sequence[float], s_min: Optional[float] = None,
                s_max: Optional[float] = None) -> Tuple[float, float, float]:
        """Nearest point of the centreline (within [s_min, s_max] when given): arc length,
        signed lateral offset (positive left) and the road heading there."""
        p = np.asarray(xy, dtype=float)[:2]
        step = self.s[1] - self.s[0]
        last = len(self.s) - 1
        lo = 0 if s_min is None else min(max(0, int(math.floor(s_min / step))), last - 1)
        hi = last if s_max is None else min(max(lo + 1, int(math.ceil(s_max / step))), last)
        a = self.points[lo:hi]
        d = self.points[lo + 1:hi + 1] - a
        seg_len2 = np.einsum("ij,ij->i", d, d)
        t = np.clip(np.einsum("ij,ij->i", p - a, d) / np.maximum(seg_len2, 1e-12), 0.0, 1.0)
        closest = a + t[:, None] * d
        dist2 = np.einsum("ij,ij->i", p - closest, p - closest)
        j = int(np.argmin(dist2))
        seg = d[j] / math.sqrt(max(seg_len2[j], 1e-12))
        rel = p - a[j]
        lateral = float(seg[0] * rel[1] - seg[1] * rel[0])
        s = float(self.s[lo + j] + t[j] * math.sqrt(seg_len2[j]))
        # Past the ends, measure along the extended centreline.
        if lo + j == 0 and t[j] == 0.0:
            s += float(np.dot(rel, seg))
        elif lo + j + 1 == len(self.s) - 1 and t[j] == 1.0:
            s += float(np.dot(p - self.points[-1], seg))
        return s, lateral, float(math.atan2(seg[1], seg[0]))

    def summary(self, every_m: float = 5.0) -> dict:
        step = max(1, int(round(every_m / (self.s[1] - self.s[0]))))
        idx = list(range(0, len(self.s), step))
        if idx[-1] != len(self.s) - 1:
            idx.append(len(self.s) - 1)
        return {
            "length_m": self.length_m,
            "lane_width_m": self.lane_width_m,
            "spacing_m": float(self.s[1] - self.s[0]),
            "n_points": int(len(self.s)),
            "start": [float(self.points[0, 0]), float(self.points[0, 1]), float(self.headings[0])],
            "end": [float(self.points[-1, 0]), float(self.points[-1, 1]),
                    float(wrap_angle(self.headings[-1]))],
            "segments": [dict(sg) for sg in self.segments],
            "polyline_every_m": float(step * (self.s[1] - self.s[0])),
            "polyline": [[float(self.points[i, 0]), float(self.points[i, 1])] for i in idx],
        }


def _self_clearance_ok(points: np.ndarray, spacing_m: float, clearance_m: float) -> bool:
    """No two centreline points further apart along the road than the clearance (times pi/2, the
    arc of a tight turn) come closer than ``clearance_m`` in the plane."""
    sub = points[:: max(1, int(round(1.0 / spacing_m)))]
    step = spacing_m * max(1, int(round(1.0 / spacing_m)))
    diff = sub[:, None, :] - sub[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    idx = np.arange(len(sub))
    along = np.abs(idx[:, None] - idx[None, :]) * step
    return bool(np.all(dist[along > 0.5 * math.pi * clearance_m] >= clearance_m))


def generate_route(rng: np.random.Generator, length_m: float, lane_width_m: float,
                   params: CourseParams = CourseParams(), max_tries: int = 50) -> Route:
    """A random open road of ``length_m`` that does not come back near itself."""
    lead_in = min(params.lead_in_m, length_m)
    for _ in range(max_tries):
        segs = [{"kind": "straight", "length_m": lead_in, "curvature": 0.0}]
        total = lead_in
        last_sign = 0
        while total < length_m - 1e-9:
            if rng.random() < params.arc_probability:
                radius = float(rng.uniform(*params.radius_m))
                turn = math.radians(float(rng.uniform(*params.turn_deg)))
                # Alternate directions more often than not, which keeps the road from coiling.
                sign = -last_sign if last_sign and rng.random() < 0.7 else (1 if rng.random() < 0.5 else -1)
                last_sign = sign
                seg = {"kind": "arc", "length_m": radius * turn, "curvature": sign / radius,
                       "radius_m": radius, "turn_rad": sign * turn}
            else:
                seg = {"kind": "straight", "length_m": float(rng.uniform(*params.straight_m)),
                       "curvature": 0.0}
            seg["length_m"] = min(seg["length_m"], length_m - total)
            if seg["kind"] == "arc":
                seg["turn_rad"] = seg["length_m"] * seg["curvature"]
            total += seg["length_m"]
            segs.append(seg)
        route = Route.from_segments(segs, params.spacing_m, lane_width_m)
        if _self_clearance_ok(route.points, params.spacing_m, params.self_clearance_m):
            return route
    # Every draw coiled back on itself (only for extreme parameters): a straight road.
    return Route.from_segments([{"kind": "straight", "length_m": length_m, "curvature": 0.0}],
                               params.spacing_m, lane_width_m)


# ------------------------------------------------------------------------------------ obstacles
@dataclass
class Obstacle:
    """An obstacle's true state. ``kind``:

    * "static";
    * "crossing": a pedestrian waiting beside the road at ``route_s`` who starts to cross once
      the ego's front bumper is within ``trigger_distance_m`` along the road, walks across at
      ``speed_mps`` to the same distance on the other side and stays there; like a real
      pedestrian it never walks into the car (it waits while its next step would come closer
      than ``VehicleScene.pedestrian_clearance_m`` to the car), so every collision is the car's;
    * "lead": a car driving ahead along the lane at ``speed_mps``; it drives on past the end of
      the route, or halts at ``stop_s`` short of a static obstacle in the lane;
    * "constant_velocity": placed by ``add_obstacle``.

    ``size`` is the bounding box (x, y, z) in the obstacle's own frame; for a cylinder
    x = y = diameter. ``position`` is the centre of that box in odom; ``route_s`` and ``lateral``
    its projection onto the centreline."""

    id: int
    kind: str
    shape: str
    size: Tuple[float, float, float]
    colour: str
    position: np.ndarray
    yaw: float = 0.0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(3))
    speed_mps: float = 0.0
    reflectivity: float = 0.6
    in_lane: bool = False
    route_s: float = float("nan")
    lateral: float = float("nan")
    # Kinematic state of the moving kinds.
    phase: str = ""                      # crossing: waiting, walking, arrived; lead: driving, halted, gone
    direction: float = 1.0               # crossing: sign of the lateral motion
    lateral_limit: float = 0.0           # crossing: walks from -direction * limit to +direction * limit
    trigger_distance_m: float = float("nan")
    stop_s: float = float("inf")         # lead
    body: int = -1

    @property
    def footprint_radius(self) -> float:
        return 0.5 * math.hypot(self.size[0], self.size[1])

    def to_dict(self) -> dict:
        return {
            "id": int(self.id), "kind": self.kind, "shape": self.shape,
            "size": [float(v) for v in self.size], "colour": self.colour,
            "position": [float(v) for v in self.position], "yaw": float(self.yaw),
            "velocity": [float(v) for v in self.velocity], "speed_mps": float(self.speed_mps),
            "reflectivity": float(self.reflectivity), "in_lane": bool(self.in_lane),
            "route_s": None if not math.isfinite(self.route_s) else float(self.route_s),
            "lateral": None if not math.isfinite(self.lateral) else float(self.lateral),
            "phase": self.phase,
            "trigger_distance_m": (None if not math.isfinite(self.trigger_distance_m)
                                   else float(self.trigger_distance_m)),
            "stop_s": None if not math.isfinite(self.stop_s) else float(self.stop_s),
        }


# ----------------------------------------------------------------------------- state / reports
@dataclass(frozen=True)
class VehicleState:
    """True kinematic state of the ego car (base_link in odom)."""

    x: float
    y: float
    yaw: float
    speed_mps: float
    yaw_rate_radps: float
    steering_rad: float
    accel_mps2: float


@dataclass(frozen=True)
class Odometry:
    """Odometry of base_link in odom: pose x, y, yaw and body-frame forward speed and yaw rate."""

    x: float
    y: float
    yaw: float
    speed_mps: float
    yaw_rate_radps: float

    def as_array(self) -> np.ndarray:
        return np.array([self.x, self.y, self.yaw, self.speed_mps, self.yaw_rate_radps])


@dataclass(frozen=True)
class EpisodeStatus:
    """Episode report. ``collision`` latches from the first contact until ``reset``; ``progress``
    is the largest arc length reached by base_link's projection onto the centreline (monotone);
    ``route_s_m`` the current projection. ``lane_departure`` is the current state (|lateral| >
    lane_width/2 - half the car width), ``lane_departure_steps`` counts physics steps spent
    departed since reset."""

    time_s: float
    steps: int
    collision: bool
    collided_with: Optional[int]
    lane_departure: bool
    lane_departure_steps: int
    progress_m: float
    progress_fraction: float
    route_s_m: float
    lateral_offset_m: float
    heading_error_rad: float
    speed_mps: float
    route_complete: bool
    done: bool

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------- scene
class VehicleScene(OwnsPhysicsClient):
    """Closed-loop driving scene: road, obstacles, kinematic ego car and its sensors."""

    # A crossing pedestrian stops rather than step closer than this to the car.
    pedestrian_clearance_m = 0.5

    def __init__(self, course_length_m: float = 100.0, lane_width_m: float = 3.5,
                 physics_dt_s: float = 0.02, vehicle: VehicleParams = VehicleParams(),
                 camera: FrontCameraSpec = FrontCameraSpec(), lidar: LidarSpec = LidarSpec(),
                 radar: RadarSpec = RadarSpec(), course: CourseParams = CourseParams(),
                 contact_margin_m: float = 0.05, goal_tolerance_m: float = 1.0,
                 gui: bool = False, ego_visual: Optional[bool] = None):
        """``ego_visual``: give the car a visual body (default: only with the GUI). Off, the front
        camera sees the road rather than its own bonnet, and renders stay cheap."""
        if not 10.0 <= course_length_m <= 1000.0:
            raise ValueError(f"course_length_m must be in [10, 1000], got {course_length_m}")
        if not 2.0 <= lane_width_m <= 10.0:
            raise ValueError(f"lane_width_m must be in [2, 10], got {lane_width_m}")
        if not 0.0 < physics_dt_s <= 0.1:
            raise ValueError(f"physics_dt_s must be in (0, 0.1], got {physics_dt_s}")
        import pybullet
        self._pb = pybullet
        self.course_length_m = float(course_length_m)
        self.lane_width_m = float(lane_width_m)
        self.physics_dt_s = float(physics_dt_s)
        self.vehicle = vehicle
        self.camera = camera
        self.lidar = lidar
        self.radar = radar
        self.course = course
        self.contact_margin_m = float(contact_margin_m)
        self.goal_tolerance_m = float(goal_tolerance_m)
        self.gui = bool(gui)
        self._ego_visual = self.gui if ego_visual is None else bool(ego_visual)
        self._client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
        if self._client < 0:
            raise RuntimeError("could not connect to the PyBullet physics server")

        self._render_camera = self._make_render_camera()
        self._cam_in_base = np.eye(4)
        self._cam_in_base[:3, :3] = camera.mount.rotation() @ _BODY_TO_OPTICAL
        self._cam_in_base[:3, 3] = (camera.mount.x, camera.mount.y, camera.mount.z)
        self._projection_matrix = self._render_camera.gl_projection_matrix()
        self._lidar_dirs = self._lidar_directions()

        self._seed: Optional[int] = None
        self.route: Route = Route.from_segments(
            [{"kind": "straight", "length_m": self.course_length_m, "curvature": 0.0}],
            course.spacing_m, self.lane_width_m)
        self._obstacles: List[Obstacle] = []
        self._road_bodies: List[int] = []
        # Every body LiDAR rays can hit, with its reflectivity: lidar_scan casts rays only near these.
        self._reflectivity: Dict[int, float] = {}
        self._radar_rng = np.random.default_rng(0)
        self._reset_episode()
        self._build_world()
        self._set_state(0.0, 0.0, 0.0, 0.0)

    # ------------------------------------------------------------------------------- setup
    @property
    def client_id(self) -> int:
        return self._client

    @property
    def ego_id(self) -> int:
        return self._ego

    @property
    def time_s(self) -> float:
        return self._steps * self.physics_dt_s

    def _make_render_camera(self) -> RenderCamera:
        c = self.camera
        focal = 0.5 * c.height / math.tan(0.5 * math.radians(c.fov_y_deg))
        return RenderCamera(fx=focal, fy=focal, cx=0.5 * (c.width - 1), cy=0.5 * (c.height - 1),
                            width=int(c.width), height=int(c.height), near=float(c.near_m),
                            far=float(c.far_m), frame_id=CAMERA_FRAME, parent_frame_id=ODOM_FRAME)

    def _lidar_directions(self) -> np.ndarray:
        """Unit ray directions in the LiDAR frame, ring by ring (elevation-major)."""
        az = np.arange(self.lidar.n_azimuth) * (2.0 * math.pi / self.lidar.n_azimuth)
        el = np.radians(np.asarray(self.lidar.elevations_deg, dtype=float))
        e, a = np.meshgrid(el, az, indexing="ij")
        return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)],
                        axis=-1).reshape(-1, 3)

    def _build_world(self) -> None:
        pb, cid = self._pb, self._client
        pb.resetSimulation(physicsClientId=cid)
        pb.setGravity(0.0, 0.0, -GRAVITY, physicsClientId=cid)
        if self.gui:
            pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 0, physicsClientId=cid)
        # Infinite collision plane; a large visual slab centred on the course.
        half = self.course_length_m + 200.0
        ground_col = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=cid)
        ground_vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[half, half, 0.05],
                                          visualFramePosition=[0.0, 0.0, -0.05],
                                          rgbaColor=_GROUND_RGBA, physicsClientId=cid)
        self._ground = pb.createMultiBody(0.0, ground_col, ground_vis, [0.0, 0.0, 0.0],
                                          physicsClientId=cid)
        pb.setCollisionFilterGroupMask(self._ground, -1, _WORLD_GROUP, _WORLD_GROUP | _EGO_GROUP,
                                       physicsClientId=cid)
        self._reflectivity = {self._ground: _GROUND_REFLECTIVITY}

        v = self.vehicle
        body_half = [0.5 * v.length_m, 0.5 * v.width_m, 0.5 * v.height_m]
        body_centre = [v.centre_x_m, 0.0, v.ground_clearance_m + 0.5 * v.height_m]
        ego_col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=body_half,
                                          collisionFramePosition=body_centre, physicsClientId=cid)
        ego_vis = -1
        if self._ego_visual:
            # Lower body over the whole length; cabin from just ahead of the rear bumper to a third
            # of the wheelbase, behind the default windscreen camera.
            lower_h = 0.55 * v.height_m
            cabin_rear, cabin_front = -(v.rear_overhang_m - 0.3), v.wheelbase_m / 3.0
            cabin_len = cabin_front - cabin_rear
            ego_vis = pb.createVisualShapeArray(
                shapeTypes=[pb.GEOM_BOX, pb.GEOM_BOX],
                halfExtents=[[0.5 * v.length_m, 0.5 * v.width_m, 0.5 * lower_h],
                             [0.5 * cabin_len, 0.45 * v.width_m, 0.5 * (v.height_m - lower_h)]],
                visualFramePositions=[[v.centre_x_m, 0.0, v.ground_clearance_m + 0.5 * lower_h],
                                      [0.5 * (cabin_front + cabin_rear), 0.0,
                                       v.ground_clearance_m + lower_h + 0.5 * (v.height_m - lower_h)]],
                rgbaColors=[_EGO_RGBA, _EGO_RGBA], physicsClientId=cid)
        self._ego = pb.createMultiBody(0.0, ego_col, ego_vis, [0.0, 0.0, 0.0], physicsClientId=cid)
        pb.setCollisionFilterGroupMask(self._ego, -1, _EGO_GROUP, _WORLD_GROUP, physicsClientId=cid)
        self._ego_radius = math.hypot(0.5 * v.length_m, 0.5 * v.width_m)
        self._road_bodies = []
        self._obstacles = []

    # ----------------------------------------------------------------------------- reset
    def reset(self, seed: int, n_static: Optional[int] = None, n_moving: Optional[int] = None,
              in_lane_fraction: float = 0.5, initial_speed_mps: float = 0.0) -> dict:
        """New course and obstacles, deterministic for ``seed``; the car stands at the start of
        the route, aligned with it. Defaults: 2-5 static and 0-2 moving obstacles. Each static
        obstacle stands in the lane with probability ``in_lane_fraction``, otherwise beside the
        road. Returns ``description()``."""
        seed = int(seed)
        # Separate streams, so asking for other obstacle counts keeps the same road.
        route_rng = np.random.default_rng([seed, 1])
        obstacle_rng = np.random.default_rng([seed, 2])
        self._radar_rng = np.random.default_rng([seed, 3])
        if n_static is None:
            n_static = int(obstacle_rng.integers(2, 6))
        if n_moving is None:
            n_moving = int(obstacle_rng.integers(0, 3))
        if n_static < 0 or n_moving < 0:
            raise ValueError("obstacle counts must be >= 0")
        if not 0.0 <= in_lane_fraction <= 1.0:
            raise ValueError(f"in_lane_fraction must be in [0, 1], got {in_lane_fraction}")
        self._clear_course()
        self.route = generate_route(route_rng, self.course_length_m, self.lane_width_m, self.course)
        self._build_road()
        self._place_static(obstacle_rng, int(n_static), float(in_lane_fraction))
        self._place_moving(obstacle_rng, int(n_moving))
        self._seed = seed
        self._reset_episode()
        p0, h0 = self.route.pose_at(0.0)
        self._set_state(float(p0[0]), float(p0[1]), h0, float(initial_speed_mps))
        return self.description()

    def _reset_episode(self) -> None:
        self._steps = 0
        self._time_debt = 0.0
        self._collided_with: Optional[int] = None
        self._departure_steps = 0

    def _clear_course(self) -> None:
        pb, cid = self._pb, self._client
        for body in self._road_bodies + [o.body for o in self._obstacles]:
            pb.removeBody(body, physicsClientId=cid)
            self._reflectivity.pop(body, None)
        self._road_bodies, self._obstacles = [], []

    def _set_state(self, x: float, y: float, yaw: float, speed: float) -> None:
        self._x, self._y, self._yaw = float(x), float(y), wrap_angle(yaw)
        self._v = float(np.clip(speed, 0.0, self.vehicle.max_speed_mps))
        self._steer = 0.0
        self._steer_rate = 0.0
        self._wheel_angle = 0.0
        self._yaw_rate = 0.0
        self._accel = 0.0
        self._cmd = (0.0, 0.0, 0.0)
        self._push_ego()
        s, lateral, heading = self.route.project((self._x, self._y))
        self._s = s
        self._progress = max(0.0, s)
        self._lateral, self._road_heading = lateral, heading

    def set_vehicle_state(self, x: float, y: float, yaw: float, speed_mps: float = 0.0) -> None:
        """Teleport the car (steering centred, commands cleared); progress restarts from the new
        projection onto the route."""
        self._set_state(x, y, yaw, speed_mps)

    # ------------------------------------------------------------------------------ road
    def _strip_mesh(self, offset_left: float, offset_right: float,
                    z: float) -> Tuple[List[List[float]], List[int]]:
        """Triangles of a band between two lateral offsets along the centreline."""
        pts, head = self.route.points, self.route.headings
        normal = np.stack([-np.sin(head), np.cos(head)], axis=1)
        left = pts + offset_left * normal
        right = pts + offset_right * normal
        verts: List[List[float]] = []
        for a, b in zip(left, right):
            verts.append([float(a[0]), float(a[1]), z])
            verts.append([float(b[0]), float(b[1]), z])
        idx: List[int] = []
        for i in range(len(pts) - 1):
            a, b, c, d = 2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3
            idx += [a, b, c, b, d, c]  # counter-clockwise seen from above
        return verts, idx

    def _build_road(self) -> None:
        """Asphalt strip and two edge lines, one visual-only mesh body each: visible to the camera,
        invisible to rays and contacts, three bodies whatever the course length."""
        pb, cid = self._pb, self._client
        half = 0.5 * self.lane_width_m
        line = self.course.edge_line_width_m
        bands = [((half + self.course.shoulder_m, -half - self.course.shoulder_m, _ROAD_Z),
                  _ROAD_RGBA),
                 ((half + 0.5 * line, half - 0.5 * line, _MARKING_Z), _MARKING_RGBA),
                 ((-half + 0.5 * line, -half - 0.5 * line, _MARKING_Z), _MARKING_RGBA)]
        for (left, right, z), rgba in bands:
            verts, idx = self._strip_mesh(left, right, z)
            vis = pb.createVisualShape(pb.GEOM_MESH, vertices=verts, indices=idx, rgbaColor=rgba,
                                       physicsClientId=cid)
            self._road_bodies.append(pb.createMultiBody(0.0, -1, vis, [0.0, 0.0, 0.0],
                                                        physicsClientId=cid))

    # ------------------------------------------------------------------------- obstacles
    def _spawn(self, ob: Obstacle) -> None:
        pb, cid = self._pb, self._client
        sx, sy, sz = ob.size
        rgba = dict(_OBSTACLE_PALETTE)[ob.colour]
        if ob.shape == "cylinder":
            col = pb.createCollisionShape(pb.GEOM_CYLINDER, radius=0.5 * sx, height=sz,
                                          physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_CYLINDER, radius=0.5 * sx, length=sz,
                                       rgbaColor=rgba, physicsClientId=cid)
        elif ob.shape == "box":
            col = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=[0.5 * sx, 0.5 * sy, 0.5 * sz],
                                          physicsClientId=cid)
            vis = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[0.5 * sx, 0.5 * sy, 0.5 * sz],
                                       rgbaColor=rgba, physicsClientId=cid)
        else:
            raise ValueError(f"unknown obstacle shape {ob.shape!r}")
        ob.body = pb.createMultiBody(0.0, col, vis, [float(v) for v in ob.position],
                                     _yaw_quaternion(ob.yaw), physicsClientId=cid)
        pb.setCollisionFilterGroupMask(ob.body, -1, _WORLD_GROUP, _WORLD_GROUP | _EGO_GROUP,
                                       physicsClientId=cid)
        self._reflectivity[ob.body] = ob.reflectivity
        self._obstacles.append(ob)

    @staticmethod
    def _random_look(rng: np.random.Generator) -> Tuple[str, float]:
        colour = _OBSTACLE_PALETTE[int(rng.integers(len(_OBSTACLE_PALETTE)))][0]
        return colour, float(rng.uniform(0.4, 0.9))

    def _clear_of_road(self, xy: np.ndarray, radius: float) -> bool:
        """The footprint keeps off the asphalt everywhere along the route (curves can bring
        other parts of the road near)."""
        _, lateral, _ = self.route.project(xy)
        return abs(lateral) - radius >= 0.5 * self.lane_width_m + self.course.shoulder_m + 0.3

    def _obstacle_window(self, start_m: float, end_margin_m: float) -> Tuple[float, float]:
        """Stretch of the route for obstacles: from ``start_m`` (room to get going) to
        ``end_margin_m`` before the end, both shrunk proportionally on short courses but never
        closer to the start than a few metres ahead of the car's front bumper; may be empty."""
        length = self.route.length_m
        lo = max(min(start_m, 0.3 * length), self.vehicle.front_bumper_x_m + 5.0)
        return lo, length - min(end_margin_m, 0.1 * length)

    def _place_static(self, rng: np.random.Generator, n: int, in_lane_fraction: float) -> None:
        """Boxes and cylinders at least 8 m apart along the road, in the lane (near its centre)
        or beside the road, clear of the asphalt everywhere along it."""
        s_lo, s_hi = self._obstacle_window(25.0, 8.0)
        if s_hi <= s_lo:
            return
        taken: List[float] = []
        half_lane = 0.5 * self.lane_width_m
        for _ in range(n):
            in_lane = bool(rng.random() < in_lane_fraction)
            shape = "box" if rng.random() < 0.6 else "cylinder"
            if shape == "box":
                size = (float(rng.uniform(0.6, 1.6)), float(rng.uniform(0.6, 1.6)),
                        float(rng.uniform(0.6, 1.8)))
            else:
                d = float(rng.uniform(0.5, 1.2))
                size = (d, d, float(rng.uniform(0.8, 1.8)))
            colour, refl = self._random_look(rng)
            radius = 0.5 * math.hypot(size[0], size[1])
            placed = False
            for _try in range(100):
                s = float(rng.uniform(s_lo, s_hi))
                if any(abs(s - t) < 8.0 for t in taken):
                    continue
                if in_lane:
                    lateral = float(rng.uniform(-0.5, 0.5)) * max(0.0, half_lane - 0.5 * size[1])
                else:
                    side = 1.0 if rng.random() < 0.5 else -1.0
                    lateral = side * (half_lane + self.course.shoulder_m + 0.5 + radius
                                      + float(rng.uniform(0.0, 3.0)))
                p, h = self.route.pose_at(s)
                xy = p + lateral * np.array([-math.sin(h), math.cos(h)])
                if not in_lane and not self._clear_of_road(xy, radius):
                    continue
                placed = True
                break
            if not placed:
                continue
            taken.append(s)
            yaw = wrap_angle(h + float(rng.uniform(-0.4, 0.4)))
            ob = Obstacle(id=len(self._obstacles), kind="static", shape=shape, size=size,
                          colour=colour, position=np.array([xy[0], xy[1], 0.5 * size[2]]),
                          yaw=yaw, reflectivity=refl)
            self._spawn(ob)
        self._update_route_coordinates()

    def _place_moving(self, rng: np.random.Generator, n: int) -> None:
        """At most one lead car; the rest are crossing pedestrians, kept apart from the other
        obstacles and from where the car would queue behind a static obstacle in the lane."""
        half_lane = 0.5 * self.lane_width_m
        static_in_lane = sorted(o.route_s for o in self._obstacles if o.in_lane)
        has_lead = False
        lead_size = (4.2, 1.8, 1.5)
        lo, hi = self._obstacle_window(25.0, 10.0)
        # A lead car starts, and halts, short of the first static obstacle in the lane.
        lead_stop = static_in_lane[0] - 0.5 * lead_size[0] - 3.0 if static_in_lane else math.inf
        for _ in range(n):
            kind = "lead" if (not has_lead and rng.random() < 0.5) else "crossing"
            colour, refl = self._random_look(rng)
            if kind == "lead" and lead_stop < lo:
                kind = "crossing"  # no room for it
            if kind == "lead":
                has_lead = True
                size = lead_size
                s0 = min(float(rng.uniform(lo, max(lo, min(lo + 15.0, hi)))), lead_stop)
                stop_s = lead_stop
                p, h = self.route.pose_at(s0)
                ob = Obstacle(id=len(self._obstacles), kind="lead", shape="box", size=size,
                              colour=colour, position=np.array([p[0], p[1], 0.5 * size[2]]),
                              yaw=h, speed_mps=float(rng.uniform(3.0, 5.0)), reflectivity=refl,
                              route_s=s0, lateral=0.0, phase="driving", stop_s=stop_s)
            else:
                size = (0.6, 0.6, 1.7)
                s = float("nan")
                c_lo, c_hi = self._obstacle_window(30.0, 10.0)
                for _try in range(100 if c_hi > c_lo else 0):
                    cand = float(rng.uniform(c_lo, c_hi))
                    if all(abs(cand - o.route_s) > 6.0 for o in self._obstacles) and \
                            not any(t - 25.0 < cand < t + 6.0 for t in static_in_lane):
                        s = cand
                        break
                if not math.isfinite(s):
                    continue
                limit = half_lane + self.course.shoulder_m + 1.5
                direction = 1.0 if rng.random() < 0.5 else -1.0
                p, h = self.route.pose_at(s)
                xy = p - direction * limit * np.array([-math.sin(h), math.cos(h)])
                ob = Obstacle(id=len(self._obstacles), kind="crossing", shape="box", size=size,
                              colour=colour, position=np.array([xy[0], xy[1], 0.5 * size[2]]),
                              yaw=h, speed_mps=float(rng.uniform(0.8, 1.6)), reflectivity=refl,
                              route_s=s, lateral=-direction * limit, phase="waiting",
                              direction=direction, lateral_limit=limit,
                              trigger_distance_m=float(rng.uniform(18.0, 35.0)))
            self._spawn(ob)
            self._set_moving_velocity(ob)
        self._update_route_coordinates()

    def add_obstacle(self, x: float, y: float, size: Sequence[float] = (1.0, 1.0, 1.5),
                     shape: str = "box", yaw: float = 0.0, velocity: Sequence[float] = (0.0, 0.0),
                     colour: str = "red", reflectivity: float = 0.6) -> int:
        """Place an obstacle standing on the ground at (x, y) in odom, static or moving at a
        constant planar ``velocity``; returns its id."""
        size = tuple(float(v) for v in size)
        if len(size) != 3 or min(size) <= 0.0:
            raise ValueError(f"size must be 3 positive lengths, got {size}")
        if shape == "cylinder":
            size = (size[0], size[0], size[2])
        vel = np.array([float(velocity[0]), float(velocity[1]), 0.0])
        moving = bool(np.any(vel[:2] != 0.0))
        ob = Obstacle(id=len(self._obstacles), kind="constant_velocity" if moving else "static",
                      shape=shape, size=size, colour=colour,
                      position=np.array([float(x), float(y), 0.5 * size[2]]), yaw=float(yaw),
                      velocity=vel, speed_mps=float(np.linalg.norm(vel)),
                      reflectivity=float(reflectivity))
        self._spawn(ob)
        self._update_route_coordinates()
        return ob.id

    def obstacle_states(self) -> List[Obstacle]:
        """Copies of the obstacles' true states (what the scripted expert plans with)."""
        return [replace(o, position=o.position.copy(), velocity=o.velocity.copy())
                for o in self._obstacles]

    def _update_route_coordinates(self) -> None:
        half_lane = 0.5 * self.lane_width_m
        for ob in self._obstacles:
            if ob.kind in ("static", "constant_velocity"):
                s, lateral, _ = self.route.project(ob.position[:2])
                ob.route_s, ob.lateral = s, lateral
            ob.in_lane = bool(abs(ob.lateral) - half_across(ob, self.route.pose_at(ob.route_s)[1])
                              < half_lane) and 0.0 <= ob.route_s <= self.route.length_m

    def _set_moving_velocity(self, ob: Obstacle) -> None:
        if ob.kind == "lead":
            h = self.route.pose_at(ob.route_s)[1]
            speed = ob.speed_mps if ob.phase == "driving" else 0.0
            ob.velocity = speed * np.array([math.cos(h), math.sin(h), 0.0])
        elif ob.kind == "crossing":
            n = self.route.normal_at(ob.route_s)
            speed = ob.speed_mps if ob.phase == "walking" else 0.0
            ob.velocity = ob.direction * speed * np.array([n[0], n[1], 0.0])

    def _ego_gap(self, xy: np.ndarray) -> float:
        """Distance from a point to the car's footprint rectangle (0 inside)."""
        d = np.asarray(xy, dtype=float) - (self._x, self._y)
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        lx, ly = c * d[0] + s * d[1], -s * d[0] + c * d[1]
        v = self.vehicle
        ex = max(-v.rear_overhang_m - lx, 0.0, lx - v.front_bumper_x_m)
        ey = max(abs(ly) - 0.5 * v.width_m, 0.0)
        return math.hypot(ex, ey)

    def _walk(self, ob: Obstacle, dt: float) -> None:
        if ob.phase == "waiting" and self._s + self.vehicle.front_bumper_x_m >= \
                ob.route_s - ob.trigger_distance_m:
            ob.phase = "walking"
        if ob.phase != "walking":
            return
        lat = ob.lateral + ob.direction * ob.speed_mps * dt
        arrived = ob.direction * lat >= ob.lateral_limit
        if arrived:
            lat = ob.direction * ob.lateral_limit
        p = self.route.pose_at(ob.route_s)[0]
        xy = p + lat * self.route.normal_at(ob.route_s)
        gap_now = self._ego_gap(ob.position[:2]) - ob.footprint_radius
        gap_next = self._ego_gap(xy) - ob.footprint_radius
        if gap_next < self.pedestrian_clearance_m and gap_next < gap_now:
            ob.velocity = np.zeros(3)  # waits for the car
            return
        ob.lateral = lat
        ob.position[:2] = xy
        if arrived:
            ob.phase = "arrived"

    def _move_obstacles(self, dt: float) -> None:
        pb, cid = self._pb, self._client
        half_lane = 0.5 * self.lane_width_m
        for ob in self._obstacles:
            if ob.kind == "static":
                continue
            if ob.kind == "lead" and ob.phase == "gone":
                continue
            if ob.kind == "lead":
                if ob.phase == "driving":
                    ob.route_s = min(ob.route_s + ob.speed_mps * dt, ob.stop_s)
                    if ob.route_s >= ob.stop_s:
                        ob.phase = "halted"
                if ob.route_s >= self.route.length_m:
                    # It drives on beyond the course: parked at the end it would block the route.
                    ob.phase, ob.in_lane = "gone", False
                    ob.position[:2] = self.route.pose_at(self.route.length_m)[0] + 1000.0
                    self._set_moving_velocity(ob)
                    pb.resetBasePositionAndOrientation(ob.body, [float(v) for v in ob.position],
                                                       _yaw_quaternion(ob.yaw), physicsClientId=cid)
                    pb.resetBaseVelocity(ob.body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=cid)
                    continue
                p, h = self.route.pose_at(ob.route_s)
                ob.position[:2] = p
                ob.yaw = h
                self._set_moving_velocity(ob)
            elif ob.kind == "crossing":
                self._set_moving_velocity(ob)
                self._walk(ob, dt)
            else:  # constant_velocity
                ob.position[:2] += ob.velocity[:2] * dt
                ob.route_s, ob.lateral, _ = self.route.project(ob.position[:2])
            h_road = self.route.pose_at(ob.route_s)[1]
            ob.in_lane = bool(abs(ob.lateral) - half_across(ob, h_road) < half_lane
                              and 0.0 <= ob.route_s <= self.route.length_m)
            pb.resetBasePositionAndOrientation(ob.body, [float(v) for v in ob.position],
                                               _yaw_quaternion(ob.yaw), physicsClientId=cid)
            pb.resetBaseVelocity(ob.body, [float(v) for v in ob.velocity], [0.0, 0.0, 0.0],
                                 physicsClientId=cid)

    # --------------------------------------------------------------------------- control
    def apply_command(self, steering: float, throttle: float, brake: float) -> Tuple[float, float, float]:
        """Set the command held until the next one: steering angle (rad, positive left), throttle
        and brake pedals in [0, 1]. Values are clamped; a non-finite value anywhere is read as
        full brake with the steering held (the failure must slow the car, never steer it).
        Returns the command actually applied."""
        vals = (steering, throttle, brake)
        try:
            finite = all(math.isfinite(float(v)) for v in vals)
        except (TypeError, ValueError):
            finite = False
        if not finite:
            self._cmd = (self._cmd[0], 0.0, 1.0)
        else:
            lim = self.vehicle.max_steering_rad
            self._cmd = (float(np.clip(float(steering), -lim, lim)),
                         float(np.clip(float(throttle), 0.0, 1.0)),
                         float(np.clip(float(brake), 0.0, 1.0)))
        return self._cmd

    @property
    def command(self) -> Tuple[float, float, float]:
        return self._cmd

    def step(self, dt_s: Optional[float] = None) -> int:
        """Advance the world by whole physics steps: one without ``dt_s``, otherwise as many as
        fit in the time accumulated so far (the remainder carries over to the next call, so a
        caller stepping at its own rate stays in sync with simulated time). Returns the count."""
        if dt_s is None:
            n = 1
        else:
            if not math.isfinite(dt_s) or dt_s < 0.0:
                raise ValueError(f"dt_s must be finite and >= 0, got {dt_s}")
            self._time_debt += float(dt_s)
            n = int(math.floor(self._time_debt / self.physics_dt_s + 1e-9))
            self._time_debt = max(0.0, self._time_debt - n * self.physics_dt_s)
        for _ in range(n):
            self._physics_step()
        return n

    def _physics_step(self) -> None:
        v, dt = self.vehicle, self.physics_dt_s
        steer_cmd, throttle, brake = self._cmd
        steer0 = self._steer
        self._steer += (1.0 - math.exp(-dt / v.steering_time_constant_s)) * (steer_cmd - self._steer)
        self._steer_rate = (self._steer - steer0) / dt
        a_cmd = throttle * v.throttle_accel_mps2 - brake * v.brake_decel_mps2
        # Rolling resistance opposes motion; at rest it holds the car until the throttle beats it.
        if self._v > 0.0 or a_cmd > v.rolling_resistance_mps2:
            a_cmd -= v.rolling_resistance_mps2
        else:
            a_cmd = 0.0
        v0 = self._v
        v1 = float(np.clip(v0 + a_cmd * dt, 0.0, v.max_speed_mps))  # brakes never reverse
        v_mid = 0.5 * (v0 + v1)
        yaw_rate = v_mid * math.tan(self._steer) / v.wheelbase_m
        dpsi = yaw_rate * dt
        # Exact arc of constant curvature over the step.
        chord = v_mid * dt * float(np.sinc(dpsi / (2.0 * math.pi)))
        mid = self._yaw + 0.5 * dpsi
        self._x += chord * math.cos(mid)
        self._y += chord * math.sin(mid)
        self._yaw = wrap_angle(self._yaw + dpsi)
        self._v = v1
        self._wheel_angle = wrap_angle(self._wheel_angle + v_mid * dt / v.wheel_radius_m)
        self._accel = (v1 - v0) / dt
        self._yaw_rate = yaw_rate
        self._steps += 1
        self._move_obstacles(dt)
        self._push_ego()
        self._check_collision()
        self._update_progress()

    def _push_ego(self) -> None:
        self._pb.resetBasePositionAndOrientation(self._ego, [self._x, self._y, 0.0],
                                                 _yaw_quaternion(self._yaw),
                                                 physicsClientId=self._client)

    def _check_collision(self) -> None:
        if self._collided_with is not None:
            return
        centre = np.array([self._x, self._y]) + self.vehicle.centre_x_m * np.array(
            [math.cos(self._yaw), math.sin(self._yaw)])
        for ob in self._obstacles:
            reach = self._ego_radius + ob.footprint_radius + self.contact_margin_m
            if np.sum((ob.position[:2] - centre) ** 2) > reach * reach:
                continue
            if self._pb.getClosestPoints(self._ego, ob.body, self.contact_margin_m,
                                         physicsClientId=self._client):
                self._collided_with = ob.id
                return

    def _update_progress(self) -> None:
        # A window around the last projection: cheap, and it cannot jump to another part of the
        # road that happens to pass nearby.
        s, lateral, heading = self.route.project((self._x, self._y), self._s - 5.0, self._s + 10.0)
        self._s, self._lateral, self._road_heading = s, lateral, heading
        self._progress = max(self._progress, min(s, self.route.length_m))
        if self._departed():
            self._departure_steps += 1

    def _departed(self) -> bool:
        return abs(self._lateral) > 0.5 * self.lane_width_m - 0.5 * self.vehicle.width_m

    # --------------------------------------------------------------------------- reports
    def vehicle_state(self) -> VehicleState:
        return VehicleState(self._x, self._y, self._yaw, self._v, self._yaw_rate, self._steer,
                            self._accel)

    def status(self) -> EpisodeStatus:
        length = self.route.length_m
        complete = self._progress >= length - self.goal_tolerance_m
        collision = self._collided_with is not None
        return EpisodeStatus(
            time_s=self.time_s, steps=int(self._steps), collision=collision,
            collided_with=self._collided_with, lane_departure=self._departed(),
            lane_departure_steps=int(self._departure_steps), progress_m=float(self._progress),
            progress_fraction=float(self._progress / length), route_s_m=float(self._s),
            lateral_offset_m=float(self._lateral),
            heading_error_rad=wrap_angle(self._yaw - self._road_heading),
            speed_mps=float(self._v), route_complete=bool(complete),
            done=bool(complete or collision))

    def description(self) -> dict:
        """JSON-serialisable description of the current episode (odom frame, metres, radians)."""
        return {
            "seed": self._seed,
            "frame_id": ODOM_FRAME,
            "course_length_m": self.course_length_m,
            "lane_width_m": self.lane_width_m,
            "physics_dt_s": self.physics_dt_s,
            "route": self.route.summary(),
            "obstacles": [o.to_dict() for o in self._obstacles],
            "vehicle": {**asdict(self.vehicle), "pose": [self._x, self._y, self._yaw],
                        "speed_mps": self._v},
            "sensors": self.sensor_frames(),
            "camera_info": self.camera_info(),
        }

    def sensor_frames(self) -> Dict[str, dict]:
        """Mount of every sensor frame in base_link: {frame: {"parent", "xyz_quat"}} (for TF)."""
        q = matrix_to_quaternion(self._cam_in_base[:3, :3])
        cam = [float(v) for v in self._cam_in_base[:3, 3]] + [float(v) for v in q]
        return {
            CAMERA_FRAME: {"parent": BASE_FRAME, "xyz_quat": cam},
            LIDAR_FRAME: {"parent": BASE_FRAME, "xyz_quat": self.lidar.mount.xyz_quat()},
            RADAR_FRAME: {"parent": BASE_FRAME, "xyz_quat": self.radar.mount.xyz_quat()},
        }

    def camera_info(self) -> dict:
        cam = self._render_camera
        return {"frame_id": CAMERA_FRAME, "width": int(cam.width), "height": int(cam.height),
                "K": [[float(v) for v in row] for row in cam.K],
                "near_m": float(cam.near), "far_m": float(cam.far)}

    # --------------------------------------------------------------------------- sensors
    def base_pose(self) -> np.ndarray:
        """4x4 pose of base_link in odom."""
        t = np.eye(4)
        t[:3, :3] = _rot_z(self._yaw)
        t[:3, 3] = (self._x, self._y, 0.0)
        return t

    def render_camera(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Front camera: RGB (H, W, 3) uint8, z-depth along the optical axis (H, W) float32 metres
        (NaN where the ray meets nothing before the far plane, e.g. sky), and K (3, 3)."""
        pb, cam = self._pb, self._render_camera
        cam.pose = self.base_pose() @ self._cam_in_base
        _, _, rgba, depth_buf, _ = pb.getCameraImage(
            cam.width, cam.height, cam.gl_view_matrix(), self._projection_matrix,
            renderer=pb.ER_TINY_RENDERER, flags=pb.ER_NO_SEGMENTATION_MASK,
            physicsClientId=self._client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[:, :, :3].copy()
        buf = np.asarray(depth_buf, dtype=np.float32).reshape(cam.height, cam.width)
        depth = cam.linearize_depth(buf)
        depth[buf >= 1.0 - 1e-7] = np.nan
        return rgb, depth, cam.K.copy()

    def lidar_scan(self) -> np.ndarray:
        """LiDAR returns (N, 4) float32 x, y, z, intensity in the LiDAR frame, in ray order; misses
        and returns closer than the minimum range are omitted, the ego car is transparent. Intensity
        is the surface's reflectivity times the cosine of the incidence angle, in [0, 1].

        Only the rays that pass through an obstacle's bounding box are cast by PyBullet; every
        other ray can meet nothing but the ground plane, so it is intersected with z = 0 directly.
        Casting costs about 2 us a ray, whether or not it hits, and the whole scan was the largest
        part of a simulator tick; the two give the same returns (test_vehicle_scene)."""
        spec = self.lidar
        t = self.base_pose() @ spec.mount.matrix()
        origin = t[:3, 3]
        dirs_world = self._lidar_dirs @ t[:3, :3].T
        n = len(dirs_world)
        rng_m = np.full(n, np.inf)
        cos_inc = np.abs(dirs_world[:, 2])  # the ground's normal is +z
        refl = np.full(n, _GROUND_REFLECTIVITY)
        down = dirs_world[:, 2] < 0.0
        rng_m[down] = origin[2] / -dirs_world[down, 2]
        cast = np.flatnonzero(self._rays_meet_boxes(origin, dirs_world, spec.max_range_m))
        if len(cast):
            self._cast_rays(origin, dirs_world, cast, spec.max_range_m, rng_m, cos_inc, refl)
        idx = np.flatnonzero((rng_m <= spec.max_range_m) & (rng_m >= spec.min_range_m))
        out = np.empty((len(idx), 4), dtype=np.float32)
        out[:, :3] = self._lidar_dirs[idx] * rng_m[idx, None]
        out[:, 3] = np.clip(refl[idx] * cos_inc[idx], 0.0, 1.0)
        return out

    def _rays_meet_boxes(self, origin: np.ndarray, dirs: np.ndarray, max_range_m: float) -> np.ndarray:
        """Mask of the rays (unit `dirs` from `origin`) that pass within max_range_m through the
        axis-aligned bounding box, as PyBullet keeps it, of any LiDAR-visible body but the ground."""
        boxes = [self._pb.getAABB(body, physicsClientId=self._client)
                 for body in self._reflectivity if body != self._ground]
        if not boxes:
            return np.zeros(len(dirs), dtype=bool)
        margin = 0.05  # m: a ray grazing a face is cast by PyBullet, which decides
        lo = np.array([b[0] for b in boxes]) - margin
        hi = np.array([b[1] for b in boxes]) + margin
        # Slab test; a zero direction component becomes a tiny one of the same sign, so that a ray
        # parallel to a slab is inside it for all t or for none.
        d = np.where(np.abs(dirs) < 1e-12, np.copysign(1e-12, dirs), dirs)
        t_enter = np.zeros((len(dirs), len(boxes)))
        t_exit = np.full((len(dirs), len(boxes)), float(max_range_m))
        for axis in range(3):  # (rays, boxes) per axis: reductions over a length-3 axis are slow
            inv = 1.0 / d[:, axis, None]
            t1 = (lo[:, axis] - origin[axis]) * inv
            t2 = (hi[:, axis] - origin[axis]) * inv
            np.maximum(t_enter, np.minimum(t1, t2), out=t_enter)
            np.minimum(t_exit, np.maximum(t1, t2), out=t_exit)
        return (t_exit >= t_enter).any(axis=1)

    def _cast_rays(self, origin: np.ndarray, dirs: np.ndarray, cast: np.ndarray, max_range_m: float,
                   rng_m: np.ndarray, cos_inc: np.ndarray, refl: np.ndarray) -> None:
        """PyBullet's closest hit of the rays `cast`, written into rng_m, cos_inc and refl."""
        ends = origin + max_range_m * dirs[cast]
        results = self._pb.rayTestBatch(np.repeat(origin[None], len(cast), axis=0), ends, numThreads=1,
                                        collisionFilterMask=_WORLD_GROUP, physicsClientId=self._client)
        for i, (body, _, frac, _, normal) in zip(cast, results):
            if body < 0:
                rng_m[i] = np.inf
                continue
            rng_m[i] = frac * max_range_m
            cos_inc[i] = abs(normal[0] * dirs[i, 0] + normal[1] * dirs[i, 1] + normal[2] * dirs[i, 2])
            refl[i] = self._reflectivity.get(body, 0.5)

    def radar_targets(self) -> np.ndarray:
        """Radar targets (M, 4) float32: range (m), azimuth (rad, counter-clockwise from the
        radar's +x), radial velocity (m/s, positive moving away; relative to the moving radar)
        and RCS (dBsm), one per obstacle in the field of view, measured in the radar's horizontal
        plane at the nearest point of the obstacle's footprint. No occlusion is modelled."""
        spec = self.radar
        t = self.base_pose() @ spec.mount.matrix()
        pos = t[:3, 3]
        r_wr = t[:3, :3]
        # Velocity of the radar point of the rigid car: v_base + omega x r.
        heading = np.array([math.cos(self._yaw), math.sin(self._yaw), 0.0])
        lever = pos - np.array([self._x, self._y, 0.0])
        v_radar = self._v * heading + np.cross([0.0, 0.0, self._yaw_rate], lever)
        rows = []
        for ob in self._obstacles:
            near = _nearest_footprint_point(ob, pos[:2])
            if near is None:
                continue
            rel_w = np.array([near[0] - pos[0], near[1] - pos[1], 0.0])
            rel = r_wr.T @ rel_w
            rng_m = math.hypot(rel[0], rel[1])
            if not spec.min_range_m <= rng_m <= spec.max_range_m:
                continue
            az = math.atan2(rel[1], rel[0])
            if abs(az) > 0.5 * math.radians(spec.fov_deg):
                continue
            u = rel_w / max(np.linalg.norm(rel_w), 1e-9)
            radial = float(np.dot(ob.velocity - v_radar, u))
            area = max(ob.size[0], ob.size[1]) * ob.size[2]
            rcs = 10.0 * math.log10(max(area, 1e-3)) + spec.rcs_offset_dbsm
            rows.append([rng_m, az, radial, rcs])
        if not rows:
            return np.zeros((0, 4), dtype=np.float32)
        out = np.asarray(rows, dtype=np.float64)
        noise = self._radar_rng.normal(size=out.shape) * np.array(
            [spec.range_noise_m, spec.azimuth_noise_rad, spec.velocity_noise_mps, spec.rcs_noise_db])
        out += noise
        out[:, 0] = np.maximum(out[:, 0], 0.0)
        return out.astype(np.float32)

    def imu(self) -> Tuple[np.ndarray, np.ndarray]:
        """IMU at base_link: specific force (m/s^2; +9.81 on z at rest on level ground) and
        angular velocity (rad/s), both in base_link. The rear-axle point of a bicycle model moves
        along the car's heading, so its acceleration is dv/dt forward and v * yaw_rate left."""
        lin = np.array([self._accel, self._v * self._yaw_rate, GRAVITY])
        ang = np.array([0.0, 0.0, self._yaw_rate])
        return lin, ang

    def joint_state(self) -> Tuple[Tuple[str, ...], np.ndarray, np.ndarray]:
        """(JOINT_NAMES, positions, velocities) as a car's steering-angle and wheel-speed sensors
        report them: the road-wheel steering angle (rad) and its rate (rad/s); the rear wheels'
        rotation angle (rad, wrapped to (-pi, pi]) and spin rate (rad/s = speed / wheel radius)."""
        spin = self._v / self.vehicle.wheel_radius_m
        return (JOINT_NAMES, np.array([self._steer, self._wheel_angle]),
                np.array([self._steer_rate, spin]))

    def odometry(self) -> Odometry:
        """True odometry of base_link in odom (no drift modelled)."""
        return Odometry(self._x, self._y, self._yaw, self._v, self._yaw_rate)


def half_across(ob: Obstacle, road_heading: float) -> float:
    """Half the obstacle's extent across the road."""
    if ob.shape == "cylinder":
        return 0.5 * ob.size[0]
    rel = ob.yaw - road_heading
    return 0.5 * (abs(math.sin(rel)) * ob.size[0] + abs(math.cos(rel)) * ob.size[1])


def half_along(ob: Obstacle, road_heading: float) -> float:
    """Half the obstacle's extent along the road."""
    if ob.shape == "cylinder":
        return 0.5 * ob.size[0]
    rel = ob.yaw - road_heading
    return 0.5 * (abs(math.cos(rel)) * ob.size[0] + abs(math.sin(rel)) * ob.size[1])


def _nearest_footprint_point(ob: Obstacle, xy: np.ndarray) -> Optional[np.ndarray]:
    """Point of the obstacle's footprint nearest to ``xy`` (None when ``xy`` lies inside it)."""
    centre = ob.position[:2]
    d = np.asarray(xy, dtype=float) - centre
    if ob.shape == "cylinder":
        r = 0.5 * ob.size[0]
        dist = float(np.linalg.norm(d))
        return None if dist <= r else centre + d * (r / dist)
    c, s = math.cos(ob.yaw), math.sin(ob.yaw)
    local = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
    half = np.array([0.5 * ob.size[0], 0.5 * ob.size[1]])
    if np.all(np.abs(local) <= half):
        return None
    cl = np.clip(local, -half, half)
    return centre + np.array([c * cl[0] - s * cl[1], s * cl[0] + c * cl[1]])
