"""ROS-free PyBullet tabletop scene with a Franka Panda and an RGB-D camera.

Frames: the robot base ``panda_link0`` sits at the simulator world origin, so
every position in this module is expressed in the robot base frame (metres,
radians, REP-103). The table surface is the plane z = 0; objects are placed
in front of the robot inside ``Workspace`` (default x in [0.35, 0.65],
y in [-0.2, 0.2]).

Each scene owns its own PyBullet client (DIRECT by default) and passes the
client id to every call, so several scenes can coexist in one process.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from msvla_core.geometry import matrix_to_quaternion

from .physics_client import OwnsPhysicsClient
from .camera import BASE_FRAME, RenderCamera, CameraSpec
from .catalogue import OBJECT_COUNTS, SPLITS, kinds_of
from .scene_objects import (CLUTTER_WORKSPACE, ObjectPlacement, SpawnedBody, Workspace, default_count,
                            sample_layout, spawn_object, wrap_angle)
from .sensor_model import CameraJitter, SensorNoise, jitter_pose, noisy_depth, noisy_rgb

ARM_JOINT_NAMES: Tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES: Tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
JOINT_NAMES: Tuple[str, ...] = ARM_JOINT_NAMES + FINGER_JOINT_NAMES

# Arm folded back and up, out of the camera's view of the workspace.
HOME_ARM_POSITIONS: Tuple[float, ...] = (0.0, -1.2, 0.0, -2.8, 0.0, 1.75, math.pi / 4)
# Elbow-up, hand-down configuration used as the IK null-space preference.
IK_REST_POSITIONS: Tuple[float, ...] = (0.0, -0.3, 0.0, -2.2, 0.0, 2.0, math.pi / 4)

MAX_GRIPPER_WIDTH = 0.08
TABLE_TOP_Z = 0.0
# The table URDF's top surface is 0.625 m above its origin.
_TABLE_URDF_TOP = 0.625
_TABLE_X = 0.45


@dataclass
class GraspOutcome:
    """Result of one ``execute_grasp`` call.

    lifted: names of objects raised more than ``lift_threshold`` above their
        rest height that are still held between the fingers.
    reached: the gripper reached the commanded grasp pose (position error
        below the tolerance) before closing.
    """

    lifted: List[str] = field(default_factory=list)
    reached: bool = False
    duration_s: float = 0.0
    message: str = ""
    position_error_m: float = float("nan")
    position: List[float] = field(default_factory=list)
    yaw: float = 0.0
    width: float = 0.0
    finger_width_after_close: float = float("nan")

    @property
    def success(self) -> bool:
        return len(self.lifted) > 0

    def success_for(self, name: str) -> bool:
        """True when exactly the named object (and nothing else) was lifted."""
        return self.lifted == [name]

    def to_dict(self) -> dict:
        return {
            "lifted": list(self.lifted),
            "reached": bool(self.reached),
            "duration_s": float(self.duration_s),
            "message": self.message,
            "position_error_m": float(self.position_error_m),
            "position": [float(x) for x in self.position],
            "yaw": float(self.yaw),
            "width": float(self.width),
            "finger_width_after_close": float(self.finger_width_after_close),
        }


@dataclass
class _SceneObject:
    placement: ObjectPlacement
    spawned: SpawnedBody
    rest_z: float

    @property
    def body(self) -> int:
        return self.spawned.body


# Yaw symmetry of a top-down parallel-jaw grasp by shape (None: any yaw works); meshes: half turn.
YAW_PERIOD = {"cube": math.pi / 2, "cylinder": None}
# Extra opening beyond the object's extent across the closing direction.
WIDTH_MARGIN_M = 0.025
# Grasp points sit at most this far below an object's top, so tall objects are held high enough
# for the fingertips, and at least this far above the table.
GRASP_DEPTH_BELOW_TOP_M = 0.03
GRASP_MIN_HEIGHT_M = 0.012


def fold_grasp_yaw(yaw: float) -> float:
    """A parallel-jaw grasp at yaw and yaw + pi is the same grasp: fold into [-pi/2, pi/2)."""
    return (float(yaw) + 0.5 * math.pi) % math.pi - 0.5 * math.pi


def _smoothstep(s: float) -> float:
    return s * s * (3.0 - 2.0 * s)


class FrankaTabletopScene(OwnsPhysicsClient):
    """Tabletop pick scene: Panda arm, table, primitive objects, fixed RGB-D camera."""

    physics_hz = 240
    pregrasp_height = 0.12
    lift_height = 0.18
    lift_threshold = 0.05
    reach_tolerance = 0.01
    grip_force = 40.0
    finger_speed = 0.15

    def __init__(self, image_width: int = 128, image_height: int = 128, gui: bool = False,
                 camera: CameraSpec = CameraSpec(), workspace: Optional[Workspace] = None,
                 scene_set: str = "basic", split: str = "train", noise: Optional[SensorNoise] = None,
                 jitter: Optional[CameraJitter] = None):
        """``scene_set``: "basic" (3-6 primitives) or "cluttered" (5-8 mixed objects, repeated
        colours); ``split`` "heldout" draws toy meshes no training scene uses. ``noise`` makes
        renders noisy (depth noise and holes, RGB noise); ``jitter`` moves the camera randomly
        away from ``camera`` at every reset (its true pose is in the scene description)."""
        kinds_of(scene_set)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.scene_set, self.split = scene_set, split
        self.noise, self.jitter = noise, jitter
        if workspace is None:
            workspace = CLUTTER_WORKSPACE if scene_set == "cluttered" else Workspace()
        import pybullet
        import pybullet_data

        self._pb = pybullet
        self._data_path = pybullet_data.getDataPath()
        self.gui = bool(gui)
        self._client = pybullet.connect(pybullet.GUI if gui else pybullet.DIRECT)
        if self._client < 0:
            raise RuntimeError("could not connect to the PyBullet physics server")
        self.camera_spec = camera
        self.workspace = workspace
        self.camera_model = RenderCamera.from_spec(camera, image_width, image_height)
        self._nominal_camera_pose = self.camera_model.pose.copy()
        self._noise_rng = np.random.default_rng(0)
        self._view_matrix = self.camera_model.gl_view_matrix()
        self._projection_matrix = self.camera_model.gl_projection_matrix()
        self._seed: Optional[int] = None
        self._objects: List[_SceneObject] = []
        self._shape_cache: Dict[tuple, Tuple[int, int]] = {}
        # Called after every physics step, also inside execute_grasp: a node keeps its sensors
        # streaming while a grasp runs, as a real camera would.
        self.step_observer: Optional[Callable[[], None]] = None
        self._build_world()
        # Snapshot of the object-free world; reset() returns to it instead of
        # reloading the robot, which keeps resets fast and deterministic.
        self._empty_world_state = self._pb.saveState(physicsClientId=self._client)

    # ------------------------------------------------------------------ setup
    @property
    def client_id(self) -> int:
        return self._client

    @property
    def robot_id(self) -> int:
        return self._robot

    def _build_world(self) -> None:
        pb, cid = self._pb, self._client
        pb.resetSimulation(physicsClientId=cid)
        pb.setAdditionalSearchPath(self._data_path, physicsClientId=cid)
        pb.setGravity(0.0, 0.0, -9.81, physicsClientId=cid)
        pb.setTimeStep(1.0 / self.physics_hz, physicsClientId=cid)
        pb.setPhysicsEngineParameter(numSolverIterations=50, deterministicOverlappingPairs=1,
                                     physicsClientId=cid)
        if self.gui:
            pb.configureDebugVisualizer(pb.COV_ENABLE_GUI, 0, physicsClientId=cid)
        floor_z = TABLE_TOP_Z - _TABLE_URDF_TOP
        self._plane = pb.loadURDF("plane.urdf", [0.0, 0.0, floor_z], physicsClientId=cid)
        self._table = pb.loadURDF("table/table.urdf", [_TABLE_X, 0.0, floor_z],
                                  useFixedBase=True, physicsClientId=cid)
        pb.changeDynamics(self._table, -1, lateralFriction=0.8, physicsClientId=cid)
        self._robot = pb.loadURDF("franka_panda/panda.urdf", [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0],
                                  useFixedBase=True,
                                  flags=pb.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
                                  physicsClientId=cid)
        joints: Dict[str, int] = {}
        links: Dict[str, int] = {}
        self._lower, self._upper, self._max_force, self._max_vel = [], [], {}, {}
        self._movable: List[int] = []
        for j in range(pb.getNumJoints(self._robot, physicsClientId=cid)):
            info = pb.getJointInfo(self._robot, j, physicsClientId=cid)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
            if info[2] != pb.JOINT_FIXED:
                self._movable.append(j)
                self._lower.append(info[8])
                self._upper.append(info[9])
                self._max_force[j] = info[10]
                self._max_vel[j] = info[11]
        self._arm = [joints[n] for n in ARM_JOINT_NAMES]
        self._fingers = [joints[n] for n in FINGER_JOINT_NAMES]
        if "panda_grasptarget" in links:
            self._tcp_link = links["panda_grasptarget"]
            self._tcp_offset = 0.0
        else:  # hand link plus the flange-to-fingertip distance
            self._tcp_link = links["panda_hand"]
            self._tcp_offset = 0.1034
        self._finger_links = [links["panda_leftfinger"], links["panda_rightfinger"]]
        self._ranges = [u - l for l, u in zip(self._lower, self._upper)]
        self._dof_index = {j: k for k, j in enumerate(self._movable)}
        self._set_arm(HOME_ARM_POSITIONS)
        self._set_fingers(0.5 * MAX_GRIPPER_WIDTH)
        self._hold_current()
        self._objects = []

    # ------------------------------------------------------------ scene reset
    def reset(self, seed: int, n_objects: Optional[int] = None) -> dict:
        """New scene with a random number of objects (basic 3-6, cluttered 5-8) or ``n_objects``;
        deterministic for ``seed``. Returns ``scene_description()`` after the objects settled."""
        rng = np.random.default_rng(int(seed))
        n_default = default_count(rng, self.scene_set)
        n = n_default if n_objects is None else int(n_objects)
        limit = OBJECT_COUNTS[self.scene_set][1] + 4
        if not 1 <= n <= limit:
            raise ValueError(f"n_objects must be in [1, {limit}], got {n}")
        layout = sample_layout(rng, n, self.workspace, self.scene_set, self.split)
        pb, cid = self._pb, self._client
        for obj in self._objects:
            pb.removeBody(obj.body, physicsClientId=cid)
        self._objects = []
        pb.restoreState(stateId=self._empty_world_state, physicsClientId=cid)
        self._hold_current()
        self._place_camera(seed)
        self._noise_rng = np.random.default_rng([int(seed), 13])
        spawned = [spawn_object(pb, cid, pl, z_base=self.workspace.z_min,
                                shape_cache=self._shape_cache) for pl in layout]
        self._step(int(0.25 * self.physics_hz))
        self._objects = []
        for pl, sp in zip(layout, spawned):
            pos, _ = pb.getBasePositionAndOrientation(sp.body, physicsClientId=cid)
            self._objects.append(_SceneObject(pl, sp, float(pos[2])))
        self._seed = int(seed)
        return self.scene_description()

    def _place_camera(self, seed: int) -> None:
        pose = self._nominal_camera_pose
        if self.jitter is not None:
            pose = jitter_pose(pose, np.random.default_rng([int(seed), 11]), self.jitter)
        self.camera_model.pose = pose
        self._view_matrix = self.camera_model.gl_view_matrix()

    @property
    def camera_to_base(self) -> List[float]:
        """Current camera optical-frame pose in the base frame: x, y, z, qx, qy, qz, qw."""
        pose = self.camera_model.pose
        return [float(v) for v in pose[:3, 3]] + [float(v) for v in matrix_to_quaternion(pose[:3, :3])]

    def scene_description(self) -> dict:
        """JSON-serialisable description of the current scene (base frame, metres), including the
        expert's grasp of every object."""
        objects = []
        for obj in self._objects:
            pos, yaw = self._object_pose(obj)
            pl = obj.placement
            objects.append({
                "id": int(pl.index),
                "name": pl.name,
                "colour": pl.colour,
                "shape": pl.shape,
                "size_word": pl.size_word,
                "kind": pl.kind.key,
                "mesh_id": pl.mesh_id,
                "position": [float(c) for c in pos],
                "yaw": float(yaw),
                "size": [float(s) for s in obj.spawned.extents],
                "grasp_width": float(min(obj.spawned.extents[:2])),
                "grasp": self._expert_grasp(obj),
            })
        return {
            "seed": self._seed,
            "scene_set": self.scene_set,
            "split": self.split,
            "frame_id": BASE_FRAME,
            "objects": objects,
            "workspace": self.workspace.to_dict(),
            "camera": self.camera_model.to_dict(),
            "camera_to_base": self.camera_to_base,
        }

    def expert_grasp(self, name: str) -> dict:
        """The expert's grasp of the named object in its current pose (see scene_description)."""
        return self._expert_grasp(self._find(name))

    def _expert_grasp(self, obj: _SceneObject) -> dict:
        """Top-down grasp across the narrow side of the object's bounding box: position, yaw of the
        grasp frame, opening width and the yaw period under which the grasp is unchanged."""
        pb, cid = self._pb, self._client
        pos, orn = pb.getBasePositionAndOrientation(obj.body, physicsClientId=cid)
        rot = np.asarray(pb.getMatrixFromQuaternion(orn)).reshape(3, 3)
        centre = np.asarray(pos) + rot @ obj.spawned.local_centre
        ex, ey, ez = (float(v) for v in obj.spawned.extents)
        yaw = math.atan2(rot[1, 0], rot[0, 0])
        # A grasp yaw equal to the object's yaw closes the fingers across its own y extent.
        across = ey
        if ex < ey:
            yaw, across = yaw + 0.5 * math.pi, ex
        shape = obj.placement.shape
        period = YAW_PERIOD.get(shape, math.pi)
        yaw = 0.0 if period is None else (yaw + 0.5 * period) % period - 0.5 * period
        top = centre[2] + 0.5 * ez
        z = max(float(centre[2]), top - GRASP_DEPTH_BELOW_TOP_M, self.workspace.z_min + GRASP_MIN_HEIGHT_M)
        return {"position": [float(centre[0]), float(centre[1]), float(z)], "yaw": float(yaw),
                "width": float(min(across + WIDTH_MARGIN_M, MAX_GRIPPER_WIDTH)),
                "yaw_period": None if period is None else float(period)}

    @property
    def object_names(self) -> List[str]:
        return [o.placement.name for o in self._objects]

    def object_pose(self, name: str) -> Tuple[np.ndarray, float]:
        """(position [x, y, z] of the centre, yaw) of the named object."""
        return self._object_pose(self._find(name))

    def _find(self, name: str) -> _SceneObject:
        for obj in self._objects:
            if obj.placement.name == name:
                return obj
        raise KeyError(f"no object named {name!r} in the scene")

    def _object_pose(self, obj: _SceneObject) -> Tuple[np.ndarray, float]:
        pos, orn = self._pb.getBasePositionAndOrientation(obj.body, physicsClientId=self._client)
        yaw = self._pb.getEulerFromQuaternion(orn)[2]
        return np.asarray(pos, dtype=float), wrap_angle(yaw)

    # ----------------------------------------------------------------- sensing
    def render(self) -> Tuple[np.ndarray, np.ndarray, RenderCamera]:
        """RGB (H, W, 3) uint8, z-depth (H, W) float32 metres (NaN: no return), and the camera
        model; with sensor noise configured, each call draws new noise."""
        rgb, depth, _ = self._render(segmentation=False)
        if self.noise is not None:
            depth = noisy_depth(depth, self._noise_rng, self.noise)
            rgb = noisy_rgb(rgb, self._noise_rng, self.noise)
        return rgb, depth, self.camera_model

    def render_with_segmentation(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, RenderCamera]:
        """Like ``render`` plus an (H, W) int32 mask of scene-object ids (-1 elsewhere)."""
        rgb, depth, seg = self._render(segmentation=True)
        ids = np.full(seg.shape, -1, dtype=np.int32)
        body_mask = seg & ((1 << 24) - 1)
        for obj in self._objects:
            ids[(seg >= 0) & (body_mask == obj.body)] = obj.placement.index
        return rgb, depth, ids, self.camera_model

    def _render(self, segmentation: bool):
        pb, cam = self._pb, self.camera_model
        flags = 0 if segmentation else pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, depth_buf, seg = pb.getCameraImage(
            cam.width, cam.height, self._view_matrix, self._projection_matrix,
            renderer=pb.ER_TINY_RENDERER, flags=flags, physicsClientId=self._client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(cam.height, cam.width, 4)[:, :, :3].copy()
        shape = (cam.height, cam.width)
        depth = cam.linearize_depth(np.asarray(depth_buf, dtype=np.float32).reshape(shape))
        seg_arr = np.asarray(seg, dtype=np.int64).reshape(shape) if segmentation else None
        return rgb, depth, seg_arr

    def joint_state(self) -> Tuple[List[str], List[float], List[float]]:
        """Names, positions and velocities of the 7 arm joints and 2 finger joints."""
        states = self._pb.getJointStates(self._robot, self._arm + self._fingers,
                                         physicsClientId=self._client)
        return (list(JOINT_NAMES), [float(s[0]) for s in states], [float(s[1]) for s in states])

    def tcp_pose(self) -> Tuple[np.ndarray, np.ndarray]:
        """Position and quaternion (x, y, z, w) of the grasp point between the fingertips."""
        state = self._pb.getLinkState(self._robot, self._tcp_link, computeForwardKinematics=1,
                                      physicsClientId=self._client)
        pos = np.asarray(state[4], dtype=float)
        orn = np.asarray(state[5], dtype=float)
        if self._tcp_offset:
            rot = np.asarray(self._pb.getMatrixFromQuaternion(orn)).reshape(3, 3)
            pos = pos + rot[:, 2] * self._tcp_offset
        return pos, orn

    def gripper_width(self) -> float:
        states = self._pb.getJointStates(self._robot, self._fingers, physicsClientId=self._client)
        return float(states[0][0] + states[1][0])

    # -------------------------------------------------------------- low level
    def step(self, n: int = 1) -> None:
        self._step(n)

    def _step(self, n: int) -> None:
        for _ in range(int(n)):
            self._pb.stepSimulation(physicsClientId=self._client)
            if self.step_observer is not None:
                self.step_observer()

    def _set_arm(self, q: Sequence[float]) -> None:
        for j, v in zip(self._arm, q):
            self._pb.resetJointState(self._robot, j, float(v), 0.0, physicsClientId=self._client)

    def _set_fingers(self, each: float) -> None:
        for j in self._fingers:
            self._pb.resetJointState(self._robot, j, float(each), 0.0,
                                     physicsClientId=self._client)

    def _arm_positions(self) -> List[float]:
        states = self._pb.getJointStates(self._robot, self._arm, physicsClientId=self._client)
        return [s[0] for s in states]

    def _hold_current(self) -> None:
        """Make the motors hold the current joint positions (after a teleport)."""
        q = self._arm_positions()
        self._command_arm(q)
        fingers = [s[0] for s in self._pb.getJointStates(self._robot, self._fingers,
                                                         physicsClientId=self._client)]
        self._command_fingers(0.5 * sum(fingers), force=self.grip_force)

    def _command_arm(self, q: Sequence[float]) -> None:
        self._pb.setJointMotorControlArray(
            self._robot, self._arm, self._pb.POSITION_CONTROL,
            targetPositions=[float(v) for v in q],
            forces=[self._max_force[j] for j in self._arm],
            positionGains=[0.3] * len(self._arm),
            physicsClientId=self._client)

    def _command_fingers(self, each: float, force: float) -> None:
        for j in self._fingers:
            self._pb.setJointMotorControl2(self._robot, j, self._pb.POSITION_CONTROL,
                                           targetPosition=float(each), force=float(force),
                                           maxVelocity=self.finger_speed,
                                           physicsClientId=self._client)

    def _ik(self, position: Sequence[float], orientation: Sequence[float],
            rest_arm: Sequence[float]) -> List[float]:
        target = np.asarray(position, dtype=float)
        if self._tcp_offset:
            rot = np.asarray(self._pb.getMatrixFromQuaternion(orientation)).reshape(3, 3)
            target = target - rot[:, 2] * self._tcp_offset
        rest = [0.0] * len(self._movable)
        for j, v in zip(self._arm, rest_arm):
            rest[self._dof_index[j]] = float(v)
        for j in self._fingers:
            rest[self._dof_index[j]] = 0.02
        sol = self._pb.calculateInverseKinematics(
            self._robot, self._tcp_link, target.tolist(), list(orientation),
            lowerLimits=self._lower, upperLimits=self._upper, jointRanges=self._ranges,
            restPoses=rest, maxNumIterations=100, residualThreshold=1e-5,
            physicsClientId=self._client)
        q = [sol[self._dof_index[j]] for j in self._arm]
        return [float(np.clip(v, self._lower[self._dof_index[j]], self._upper[self._dof_index[j]]))
                for j, v in zip(self._arm, q)]

    def _rest_for(self, position: Sequence[float], yaw: float) -> List[float]:
        base = math.atan2(position[1], position[0])
        rest = list(IK_REST_POSITIONS)
        rest[0] = base
        rest[6] = IK_REST_POSITIONS[6] + base - yaw
        return rest

    def _teleport_to(self, position: Sequence[float], orientation: Sequence[float],
                     yaw: float, iterations: int = 20) -> float:
        """Place the arm (no physics) with the grasp point at ``position``; returns the error."""
        goal = np.asarray(position, dtype=float)
        rest = self._rest_for(goal, yaw)
        self._set_arm(rest)
        command = goal.copy()
        err = float("inf")
        for _ in range(iterations):
            self._set_arm(self._ik(command, orientation, rest))
            miss = goal - self.tcp_pose()[0]
            err = float(np.linalg.norm(miss))
            if err < 5e-4:
                break
            # The null-space IK leaves a small bias; shift the command to cancel it.
            command = command + miss
        return err

    def _move_linear(self, start: np.ndarray, end: np.ndarray, orientation: Sequence[float],
                     yaw: float, duration: float, settle: float = 0.15,
                     steps_per_waypoint: int = 4) -> float:
        """Straight-line grasp-point motion under position control; returns the final error."""
        n_steps = max(1, int(round(duration * self.physics_hz)))
        n_way = max(1, n_steps // steps_per_waypoint)
        rest = self._rest_for(end, yaw)
        for i in range(1, n_way + 1):
            s = _smoothstep(i / n_way)
            target = start + (end - start) * s
            self._command_arm(self._ik(target, orientation, rest))
            self._step(steps_per_waypoint)
        miss = end - self.tcp_pose()[0]
        err = float(np.linalg.norm(miss))
        command = end.copy()
        for _ in range(int(settle * self.physics_hz) // steps_per_waypoint):
            if err < 1e-3:
                break
            # Servo on the measured grasp-point error (IK bias, gravity sag).
            command = command + 0.5 * miss
            self._command_arm(self._ik(command, orientation, rest))
            self._step(steps_per_waypoint)
            miss = end - self.tcp_pose()[0]
            err = float(np.linalg.norm(miss))
        return err

    def home(self) -> None:
        """Teleport the arm to the home pose (out of the camera view), gripper open."""
        self._set_arm(HOME_ARM_POSITIONS)
        self._set_fingers(0.5 * MAX_GRIPPER_WIDTH)
        self._hold_current()

    # ------------------------------------------------------------------ grasp
    def _held_objects(self, rest_z: Dict[int, float]) -> List[str]:
        pb, cid = self._pb, self._client
        tcp_pos, tcp_orn = self.tcp_pose()
        rot = np.asarray(pb.getMatrixFromQuaternion(tcp_orn)).reshape(3, 3)
        opening = self.gripper_width()
        lifted = []
        for obj in self._objects:
            pos, _ = self._object_pose(obj)
            if pos[2] - rest_z[obj.body] <= self.lift_threshold:
                continue
            contacts = pb.getContactPoints(self._robot, obj.body, physicsClientId=cid)
            touching = {c[3] for c in contacts}
            both_fingers = all(link in touching for link in self._finger_links)
            local = rot.T @ (pos - tcp_pos)
            between = (abs(local[0]) < 0.04 and abs(local[1]) < 0.5 * opening + 0.01
                       and -0.06 < local[2] < 0.04)
            if both_fingers or between:
                lifted.append(obj.placement.name)
        return lifted

    def execute_grasp(self, position: Sequence[float], yaw: float, width: float,
                      release: str = "place") -> GraspOutcome:
        """Top-down grasp at ``position`` (grasp point between the fingertips, base frame)
        with the fingers closing along the horizontal direction perpendicular to ``yaw``
        (grasp frame +x at angle ``yaw`` about +z, +z pointing down).

        Sequence: open to ``width``, teleport to a pre-grasp pose above the target,
        descend, close with force, lift, check, then release (``"place"``: put the
        object back down; ``"drop"``: open in the air; ``"remove"``: delete lifted
        objects from the scene) and return the arm home.
        """
        t0 = time.perf_counter()
        if release not in ("place", "drop", "remove"):
            raise ValueError(f"unknown release mode {release!r}")
        pos = np.asarray(position, dtype=float).reshape(-1)
        if pos.shape != (3,) or not np.all(np.isfinite(pos)) or not math.isfinite(float(yaw)):
            raise ValueError("position must be 3 finite numbers and yaw finite")
        folded = fold_grasp_yaw(yaw)
        width = float(np.clip(width, 0.0, MAX_GRIPPER_WIDTH))
        orn = self._pb.getQuaternionFromEuler([math.pi, 0.0, folded])
        outcome = GraspOutcome(position=pos.tolist(), yaw=folded, width=width)
        rest_z = {o.body: float(self._object_pose(o)[0][2]) for o in self._objects}

        pre = pos + np.array([0.0, 0.0, self.pregrasp_height])
        self._set_fingers(0.5 * width)
        pre_err = self._teleport_to(pre, orn, folded)
        self._hold_current()
        self._command_fingers(0.5 * width, force=self.grip_force)
        if pre_err > self.reach_tolerance:
            self.home()
            outcome.message = f"pre-grasp pose unreachable (IK error {pre_err:.3f} m)"
            outcome.duration_s = time.perf_counter() - t0
            return outcome

        err = self._move_linear(pre, pos, orn, folded, duration=0.4)
        outcome.position_error_m = err
        outcome.reached = err <= self.reach_tolerance

        self._command_fingers(0.0, force=self.grip_force)
        self._step(int(0.3 * self.physics_hz))
        outcome.finger_width_after_close = self.gripper_width()

        lift = pos + np.array([0.0, 0.0, self.lift_height])
        self._move_linear(pos, lift, orn, folded, duration=0.5, settle=0.05)
        self._step(int(0.1 * self.physics_hz))
        outcome.lifted = self._held_objects(rest_z)

        self._release(release, pos, lift, orn, folded, width, outcome.lifted)
        outcome.duration_s = time.perf_counter() - t0
        state = ("reached" if outcome.reached
                 else f"did not reach the grasp pose (error {err:.3f} m)")
        what = ", ".join(outcome.lifted) if outcome.lifted else "nothing"
        outcome.message = f"{state}; lifted {what}"
        return outcome

    def _release(self, mode: str, pos: np.ndarray, lift: np.ndarray, orn, yaw: float,
                 width: float, lifted: List[str]) -> None:
        if mode == "place" and lifted:
            down = pos + np.array([0.0, 0.0, 0.005])
            self._move_linear(lift, down, orn, yaw, duration=0.4, settle=0.05)
            self._command_fingers(0.5 * max(width, 0.02), force=self.grip_force)
            self._step(int(0.15 * self.physics_hz))
            self._move_linear(down, down + np.array([0.0, 0.0, 0.08]), orn, yaw,
                              duration=0.15, settle=0.0)
        elif mode == "remove":
            keep = []
            for obj in self._objects:
                if obj.placement.name in lifted:
                    self._pb.removeBody(obj.body, physicsClientId=self._client)
                else:
                    keep.append(obj)
            self._objects = keep
        self.home()
        self._step(int(0.3 * self.physics_hz))
