"""vehicle_sim: the PyBullet driving scene (vehicle_scene.VehicleScene) over ROS 2.

The physics advances with wall time (times real_time_factor). One timer, at the highest of
physics_rate_hz and the sensor rates, steps the scene up to the present and then takes every sensor
sample that is due (SensorSchedule); every sample of a tick shows the world as it was stepped to and
carries that tick's one node-clock stamp. Sensors (each in its own frame, at its own rate):

  /camera/color/image_raw, /camera/color/camera_info   rgb8, front_camera_optical_frame
  /lidar/points       PointCloud2 x, y, z, intensity (float32) in lidar_link
  /radar/targets      PointCloud2 range, azimuth, radial_velocity, rcs (float32) in radar_link
  /imu/data           specific force (gravity included) and angular velocity in imu_link
                      (at base_link, axes aligned); no orientation (orientation_covariance[0] = -1)
  /odom               odom -> base_link pose; twist in base_link (forward speed, yaw rate)
  /joint_states       front_steering_joint (road-wheel angle, rate) and rear_wheel_joint (wheel
                      angle, spin rate = speed / wheel radius), at the odometry rate: what a car's
                      steering-angle and wheel-speed sensors give the proprioception encoder

Latched: /sim/scene (JSON: the episode's description, sensor mounts included) and
/camera/extrinsics (base_link -> camera optical frame). /sim/vehicle_status (JSON) reports the
episode at status_rate_hz and at once when the car collides or completes the route.

The only command input is the safety shield's output, /msvla/vehicle/command. A command in another
frame than base_link, or with a non-finite field, is refused (logged, counted) and read as the
scene reads any failed command: full brake, steering held. Without a command for command_timeout
seconds of simulated time the car brakes fully, as a drive-by-wire watchdog would. A new episode
starts with a seed on /sim/reset; until then the world runs on after a collision or the end of the
route (the status says done), as it would for a real car.
"""
from __future__ import annotations

import json
import math
import time

import numpy as np
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, Imu, JointState, PointCloud2, PointField
from std_msgs.msg import Int64, String

from msvla_core.data.image import array_to_image_fields
from msvla_core.data.pointcloud import array_to_pointcloud_fields
from msvla_core.params import ParamSpec
from msvla_msgs.msg import VehicleCommand
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter
from msvla_ros.main import run
from msvla_ros.messages import transform_stamped
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import COMMAND, LATCHED, SENSOR
from msvla_ros.qos_events import PolledQosEvents

from .sensor_schedule import SensorSchedule
from .vehicle_scene import (BASE_FRAME, CAMERA_FRAME, LIDAR_FRAME, ODOM_FRAME, RADAR_FRAME, FrontCameraSpec,
                            VehicleScene)

# The scene's IMU sits at base_link; it gets a frame of its own (identity mount, listed with the
# other mounts in /sim/scene) so that a real car's IMU frame can replace it.
IMU_FRAME = "imu_link"

LIDAR_FIELDS = ("x", "y", "z", "intensity")
RADAR_FIELDS = ("range", "azimuth", "radial_velocity", "rcs")
SENSORS = ("camera", "lidar", "radar", "imu", "odom")  # odom counts /joint_states too
# After a stall (a blocked executor, a suspended process) the world catches up at most this much
# simulated time in one go; the rest is dropped, so the car never jumps across the scene.
MAX_CATCH_UP_S = 0.25

PARAMS = [
    ParamSpec("seed", 0, "Seed of the first episode.", min=0, max=2**31 - 1),
    ParamSpec("course_length", 100.0, "Length of the road course.", unit="m", min=10.0, max=1000.0),
    ParamSpec("lane_width", 3.5, "Width of the lane.", unit="m", min=2.0, max=10.0),
    ParamSpec("n_static", -1, "Static obstacles per episode; -1: the scene's seeded default (2-5).",
              min=-1, max=20),
    ParamSpec("n_moving", -1, "Moving obstacles (lead car, crossing pedestrians) per episode; "
              "-1: the scene's seeded default (0-2).", min=-1, max=10),
    ParamSpec("in_lane_fraction", 0.5, "Share of the static obstacles that stand in the lane (the rest "
              "stand beside the road); 0 keeps the lane clear so the route can be completed.",
              min=0.0, max=1.0),
    ParamSpec("physics_rate_hz", 100.0, "Physics step rate (the step is 1/rate of simulated time) and "
              "rate of the wall-clock timer that advances the world and takes the sensor samples (faster if a "
              "sensor rate is higher).", unit="Hz", min=10.0, max=1000.0),
    ParamSpec("camera_rate_hz", 10.0, "Front camera frame rate.", unit="Hz", min=0.5, max=60.0),
    ParamSpec("lidar_rate_hz", 10.0, "LiDAR scan rate.", unit="Hz", min=0.5, max=40.0),
    ParamSpec("radar_rate_hz", 20.0, "Radar target list rate.", unit="Hz", min=0.5, max=100.0),
    ParamSpec("imu_rate_hz", 100.0, "IMU sample rate.", unit="Hz", min=1.0, max=400.0),
    ParamSpec("odom_rate_hz", 50.0, "Odometry and /joint_states (steering angle, wheel speed) rate.",
              unit="Hz", min=1.0, max=200.0),
    ParamSpec("status_rate_hz", 10.0, "Rate of /sim/vehicle_status (also sent at once on a collision or "
              "when the route is completed).", unit="Hz", min=0.5, max=50.0),
    ParamSpec("image_width", 128, "Rendered image width.", unit="px", min=32, max=1280),
    ParamSpec("image_height", 96, "Rendered image height.", unit="px", min=32, max=960),
    ParamSpec("command_timeout", 0.5, "Without a command for this long (simulated time) the car brakes "
              "fully, as a drive-by-wire watchdog would.", unit="s", min=0.02, max=10.0),
    ParamSpec("real_time_factor", 1.0, "Simulated seconds per wall-clock second.", min=0.05, max=10.0),
    ParamSpec("execute_commands", True, "Apply commands from /msvla/vehicle/command (false: only stream "
              "sensors; the watchdog then holds the car braked).", read_only=False),
]


def _yaw_to_quaternion(yaw: float) -> tuple[float, float, float, float]:
    return 0.0, 0.0, math.sin(0.5 * yaw), math.cos(0.5 * yaw)


class VehicleSimNode(PolledQosEvents, Node):
    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("vehicle_sim", **node_kwargs)
        v = declare_parameters(self, self.parameter_specs())
        self.params = v
        self.scene = VehicleScene(course_length_m=v["course_length"], lane_width_m=v["lane_width"],
                                  physics_dt_s=1.0 / v["physics_rate_hz"],
                                  camera=FrontCameraSpec(width=v["image_width"], height=v["image_height"]))
        self._closed = False
        self.color_pub = self.create_publisher(Image, "/camera/color/image_raw", SENSOR)
        self.info_pub = self.create_publisher(CameraInfo, "/camera/color/camera_info", SENSOR)
        self.lidar_pub = self.create_publisher(PointCloud2, "/lidar/points", SENSOR)
        self.radar_pub = self.create_publisher(PointCloud2, "/radar/targets", SENSOR)
        self.imu_pub = self.create_publisher(Imu, "/imu/data", SENSOR)
        self.odom_pub = self.create_publisher(Odometry, "/odom", SENSOR)
        self.joint_pub = self.create_publisher(JointState, "/joint_states", SENSOR)
        self.scene_pub = self.create_publisher(String, "/sim/scene", LATCHED)
        self.extrinsics_pub = self.create_publisher(TransformStamped, "/camera/extrinsics", LATCHED)
        self.status_pub = self.create_publisher(String, "/sim/vehicle_status", COMMAND)
        self.create_subscription(VehicleCommand, "/msvla/vehicle/command", self.on_command, COMMAND)
        self.create_subscription(Int64, "/sim/reset", self.on_reset, COMMAND)

        self.frames = {name: 0 for name in SENSORS}
        self.commands_applied = 0
        self.commands_ignored = 0      # execute_commands false
        self.refused = DropCounter(self)
        self.command_timeouts = 0
        self.collisions = 0
        self.completions = 0
        self.dropped_sim_s = 0.0       # simulated time lost to stalls (MAX_CATCH_UP_S)
        self.episode = 0
        self.reset(v["seed"])

        # When several are due at one tick, the cheap samples go first and the camera, whose render
        # takes longest (about 5 ms against 1.5 ms for the LiDAR scan), last: the encoders work on
        # the others while it renders.
        self.outputs = {"imu": self.publish_imu, "odom": self.publish_odom, "radar": self.publish_radar,
                        "lidar": self.publish_lidar, "camera": self.publish_camera, "status": lambda _: self.publish_status()}
        self.schedule = SensorSchedule({name: v[f"{name}_rate_hz"] for name in self.outputs}, time.monotonic(),
                                       min_tick_hz=v["physics_rate_hz"])
        self.sim_timer = self.create_timer(self.schedule.tick_period_s, self.on_tick)
        self.diagnostics = Diagnostics(self, "sim/vehicle", self._report)

    # ------------------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._closed = True
        self.sim_timer.cancel()  # no callback may run against a disconnected physics server
        self.scene.close()

    @property
    def commands_refused(self) -> int:
        return sum(self.refused.values())

    def _report(self):
        values = {"episode": self.episode, "seed": self.seed, "sim_time_s": round(self.scene.time_s, 3),
                  **{f"frames_{name}": n for name, n in self.frames.items()},
                  **{f"skipped_{name}": n for name, n in self.schedule.skipped.items() if n},
                  "commands_applied": self.commands_applied, "commands_refused": self.commands_refused,
                  **{f"refused_{reason}": n for reason, n in self.refused.items()},
                  "commands_ignored": self.commands_ignored, "command_timeouts": self.command_timeouts,
                  "collisions": self.collisions, "routes_completed": self.completions,
                  "dropped_sim_s": round(self.dropped_sim_s, 3)}
        if self.dropped_sim_s > 0.0:
            return WARN, f"simulation fell behind wall time ({self.dropped_sim_s:.2f} s dropped)", values
        return OK, "ok", values

    def reset(self, seed: int) -> None:
        self.seed = int(seed)
        n_static, n_moving = self.params["n_static"], self.params["n_moving"]
        description = self.scene.reset(self.seed, None if n_static < 0 else n_static,
                                       None if n_moving < 0 else n_moving,
                                       in_lane_fraction=self.params["in_lane_fraction"])
        self.episode += 1
        self.last_wall_s = time.monotonic()
        self.last_command_sim_s = self.scene.time_s
        self.timed_out = False
        self.last_command = {"steering": 0.0, "throttle": 0.0, "brake": 0.0, "model_id": "",
                             "source": "reset"}
        self.reported = {"collision": False, "route_complete": False}
        stamp = self.get_clock().now()
        description["episode"] = self.episode
        description["stamp_ns"] = stamp.nanoseconds
        description["sensors"][IMU_FRAME] = {"parent": BASE_FRAME, "xyz_quat": [0.0] * 6 + [1.0]}
        self.extrinsics_pub.publish(self.extrinsics(description, stamp.to_msg()))
        self.scene_pub.publish(String(data=json.dumps(description)))
        self.get_logger().info(f"episode {self.episode}: seed {self.seed}, course "
                               f"{description['route']['length_m']:.0f} m, "
                               f"{len(description['obstacles'])} obstacles "
                               f"({', '.join(o['kind'] for o in description['obstacles']) or 'none'})")

    def extrinsics(self, description: dict, stamp) -> TransformStamped:
        mount = description["sensors"][CAMERA_FRAME]
        return transform_stamped(mount["xyz_quat"], mount["parent"], CAMERA_FRAME, stamp)

    def on_reset(self, msg: Int64) -> None:
        if msg.data < 0:
            self.get_logger().error(f"/sim/reset: seed {msg.data} is negative; ignored")
            return
        self.reset(msg.data)

    # -------------------------------------------------------------------------------- physics
    def advance(self) -> bool:
        """Step the world up to the present wall time; False once closed."""
        if self._closed:
            return False
        now = time.monotonic()
        dt = (now - self.last_wall_s) * self.params["real_time_factor"]
        self.last_wall_s = now
        if dt > MAX_CATCH_UP_S:
            self.dropped_sim_s += dt - MAX_CATCH_UP_S
            self.get_logger().warning(f"simulation stalled: {dt - MAX_CATCH_UP_S:.2f} s of simulated "
                                      f"time dropped", throttle_duration_sec=2.0)
            dt = MAX_CATCH_UP_S
        self._watchdog()
        if self.scene.step(dt) > 0:
            self._watchdog()
            status = self.scene.status()
            for key in ("collision", "route_complete"):
                if getattr(status, key) and not self.reported[key]:
                    self.reported[key] = True
                    self._on_event(key, status)
        return True

    def _watchdog(self) -> None:
        """Full brake, steering held, once no command has come for command_timeout."""
        if self.timed_out or self.scene.time_s - self.last_command_sim_s < self.params["command_timeout"]:
            return
        self.timed_out = True
        self.command_timeouts += 1
        steering = self.scene.command[0]
        self.scene.apply_command(steering, 0.0, 1.0)
        self.last_command = {"steering": steering, "throttle": 0.0, "brake": 1.0, "model_id": "",
                             "source": "timeout"}
        self.get_logger().warning(f"episode {self.episode}: no command for "
                                  f"{self.params['command_timeout']:.2f} s; braking",
                                  throttle_duration_sec=1.0)

    def _on_event(self, key: str, status) -> None:
        if key == "collision":
            self.collisions += 1
            self.get_logger().warning(f"episode {self.episode}: collision with obstacle "
                                      f"{status.collided_with} at {status.speed_mps:.2f} m/s, "
                                      f"{status.progress_m:.1f} m along the route")
        else:
            self.completions += 1
            self.get_logger().info(f"episode {self.episode}: route complete in {status.time_s:.1f} s")
        self.publish_status()

    def on_tick(self) -> None:
        if not self.advance():
            return
        # Every sample of a tick shows the world as it was just stepped to: one stamp for all of them.
        stamp = self.get_clock().now().to_msg()
        for name in self.schedule.due(time.monotonic()):
            self.outputs[name](stamp)

    # ------------------------------------------------------------------------------- commands
    def on_command(self, msg: VehicleCommand) -> None:
        if not self.advance():
            return
        if not self.get_parameter("execute_commands").value:
            self.commands_ignored += 1
            return
        problem = None
        if msg.header.frame_id != BASE_FRAME:
            problem = ("wrong_frame", f"VehicleCommand.header.frame_id is {msg.header.frame_id!r}, "
                                      f"expected {BASE_FRAME!r}")
        else:
            for name in ("steering", "throttle", "brake"):
                value = float(getattr(msg, name))
                if not math.isfinite(value):
                    problem = ("non_finite", f"VehicleCommand.{name} = {value} is not finite")
                    break
        self.last_command_sim_s = self.scene.time_s
        self.timed_out = False
        if problem is not None:
            self.refused.drop(problem[0], problem[1] + "; full brake, steering held")
            # the scene's own reading of a failed command: full brake, steering held
            steering, throttle, brake = self.scene.apply_command(math.nan, math.nan, math.nan)
            source = "refused"
        else:
            steering, throttle, brake = self.scene.apply_command(msg.steering, msg.throttle, msg.brake)
            self.commands_applied += 1
            source = "command"
        self.last_command = {"steering": steering, "throttle": throttle, "brake": brake,
                             "model_id": msg.model_id, "source": source}

    # -------------------------------------------------------------------------------- sensors
    def _header(self, msg, frame_id: str, stamp) -> None:
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id

    def publish_camera(self, stamp) -> None:
        rgb, _, k = self.scene.render_camera()
        image = Image(**array_to_image_fields(rgb, "rgb8"))
        info = CameraInfo(width=rgb.shape[1], height=rgb.shape[0], distortion_model="plumb_bob",
                          d=[0.0] * 5, k=[float(x) for x in np.asarray(k).ravel()],
                          r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                          p=[float(k[0, 0]), 0.0, float(k[0, 2]), 0.0, 0.0, float(k[1, 1]), float(k[1, 2]), 0.0,
                             0.0, 0.0, 1.0, 0.0])
        for msg in (image, info):
            self._header(msg, CAMERA_FRAME, stamp)
        self.color_pub.publish(image)
        self.info_pub.publish(info)
        self.frames["camera"] += 1

    @staticmethod
    def _cloud(points: np.ndarray, names) -> PointCloud2:
        columns = {name: np.ascontiguousarray(points[:, i], dtype=np.float32) for i, name in enumerate(names)}
        fields = array_to_pointcloud_fields(columns)
        fields["fields"] = [PointField(**f) for f in fields["fields"]]
        return PointCloud2(**fields)

    def publish_lidar(self, stamp) -> None:
        points = self.scene.lidar_scan()
        msg = self._cloud(points, LIDAR_FIELDS)
        self._header(msg, LIDAR_FRAME, stamp)
        self.lidar_pub.publish(msg)
        self.frames["lidar"] += 1

    def publish_radar(self, stamp) -> None:
        targets = self.scene.radar_targets()
        msg = self._cloud(targets, RADAR_FIELDS)
        self._header(msg, RADAR_FRAME, stamp)
        self.radar_pub.publish(msg)
        self.frames["radar"] += 1

    def publish_imu(self, stamp) -> None:
        acc, gyro = self.scene.imu()
        msg = Imu()
        self._header(msg, IMU_FRAME, stamp)
        msg.orientation_covariance[0] = -1.0  # no orientation estimate
        a, w = msg.linear_acceleration, msg.angular_velocity
        a.x, a.y, a.z = (float(x) for x in acc)
        w.x, w.y, w.z = (float(x) for x in gyro)
        self.imu_pub.publish(msg)
        self.frames["imu"] += 1

    def publish_odom(self, stamp) -> None:
        odo = self.scene.odometry()
        msg = Odometry()
        self._header(msg, ODOM_FRAME, stamp)
        msg.child_frame_id = BASE_FRAME
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        p.x, p.y, p.z = float(odo.x), float(odo.y), 0.0
        q.x, q.y, q.z, q.w = _yaw_to_quaternion(odo.yaw)
        msg.twist.twist.linear.x = float(odo.speed_mps)
        msg.twist.twist.angular.z = float(odo.yaw_rate_radps)
        self.odom_pub.publish(msg)
        self.frames["odom"] += 1
        names, position, velocity = self.scene.joint_state()
        joints = JointState(name=list(names), position=[float(x) for x in position],
                            velocity=[float(x) for x in velocity])
        self._header(joints, BASE_FRAME, msg.header.stamp)  # sampled with the odometry
        self.joint_pub.publish(joints)

    def publish_status(self) -> None:
        status = self.scene.status().to_dict()
        report = {"episode": self.episode, "seed": self.seed,
                  "stamp_ns": self.get_clock().now().nanoseconds, **status,
                  "command": dict(self.last_command)}
        self.status_pub.publish(String(data=json.dumps(report)))


def main(args=None) -> int:
    return run(VehicleSimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
