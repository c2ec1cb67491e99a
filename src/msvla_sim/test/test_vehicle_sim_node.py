"""In-process node test: vehicle_sim streams every sensor in its frame with one stamp per sample,
drives on the shield's commands, brakes on its own without them, refuses malformed commands and
starts new episodes on /sim/reset."""
import json
import math
import os
import time

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, Imu, PointCloud2
from std_msgs.msg import Int64, String

from msvla_core.data.image import image_to_rgb
from msvla_core.data.pointcloud import pointcloud_to_array
from msvla_msgs.msg import VehicleCommand
from msvla_ros.messages import stamp_to_ns
from msvla_ros.qos import COMMAND, LATCHED, SENSOR
from msvla_ros.testing import Spinner, wait_for_subscribers

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "config", "vehicle", "sim.yaml")


@pytest.fixture
def make_sim(ros):
    """VehicleSimNode from the shipped parameter file plus overrides; closed and destroyed after the
    test (the caller stops its Spinner first), so no latched scene outlives it."""
    from msvla_sim.vehicle_sim_node import VehicleSimNode

    nodes = []

    def make(**overrides):
        node = VehicleSimNode(cli_args=["--ros-args", "--params-file", os.path.abspath(CONFIG)],
                              parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()


def stamp_of(msg) -> int:
    return stamp_to_ns(msg.header.stamp)


def test_streams_every_sensor_in_its_frame_with_one_stamp_per_sample(probe, spin_nodes, make_sim):
    node = make_sim(seed=3)
    color = probe.collect(Image, "/camera/color/image_raw", SENSOR)
    info = probe.collect(CameraInfo, "/camera/color/camera_info", SENSOR)
    lidar = probe.collect(PointCloud2, "/lidar/points", SENSOR)
    radar = probe.collect(PointCloud2, "/radar/targets", SENSOR)
    imu = probe.collect(Imu, "/imu/data", SENSOR)
    odom = probe.collect(Odometry, "/odom", SENSOR)
    scenes = probe.collect(String, "/sim/scene", LATCHED)
    extrinsics = probe.collect(TransformStamped, "/camera/extrinsics", LATCHED)
    status = probe.collect(String, "/sim/vehicle_status", COMMAND)
    spinner = spin_nodes(node, probe)
    try:
        assert Spinner.wait_for(lambda: len(color) >= 2 and len(info) >= 2 and len(lidar) >= 2 and len(radar) >= 2
                                and len(imu) >= 10 and len(odom) >= 5 and scenes and extrinsics and status, 15.0), \
            {topic: len(msgs) for topic, msgs in probe.received.items()}
        scene = json.loads(scenes[-1].data)
        assert scene["seed"] == 3 and scene["episode"] == 1 and scene["frame_id"] == "odom"

        # camera: rgb8 at the configured size; CameraInfo with the scene's K, sharing the image's stamp
        assert color[0].encoding == "rgb8" and color[0].header.frame_id == "front_camera_optical_frame"
        assert image_to_rgb(color[0]).shape == (96, 128, 3)
        assert {stamp_of(m) for m in color[:2]} <= {stamp_of(m) for m in info}, "image and info share stamps"
        k = np.array(info[0].k).reshape(3, 3)
        assert info[0].header.frame_id == "front_camera_optical_frame"
        assert (info[0].width, info[0].height) == (128, 96)
        np.testing.assert_allclose(k, scene["camera_info"]["K"])
        np.testing.assert_allclose(k, node.scene.camera_info()["K"])

        # camera extrinsics: base_link -> optical frame, the mount listed in the scene
        tf = extrinsics[-1]
        assert (tf.header.frame_id, tf.child_frame_id) == ("base_link", "front_camera_optical_frame")
        t, r = tf.transform.translation, tf.transform.rotation
        np.testing.assert_allclose([t.x, t.y, t.z, r.x, r.y, r.z, r.w],
                                   scene["sensors"]["front_camera_optical_frame"]["xyz_quat"], atol=1e-9)
        assert scene["sensors"]["lidar_link"]["parent"] == "base_link"
        assert scene["sensors"]["radar_link"]["xyz_quat"][:3] == [3.6, 0.0, 0.5]

        # LiDAR: x, y, z, intensity float32 in lidar_link; the ground ring is seen all around
        cloud = lidar[-1]
        assert cloud.header.frame_id == "lidar_link"
        assert [(f.name, f.datatype) for f in cloud.fields] == [(n, 7) for n in ("x", "y", "z", "intensity")]
        xyzi = pointcloud_to_array(cloud, ("x", "y", "z", "intensity"))
        assert len(xyzi) > 1000 and np.all((xyzi[:, 3] >= 0) & (xyzi[:, 3] <= 1))
        assert np.all(np.linalg.norm(xyzi[:, :3], axis=1) <= 50.0 + 1e-3)

        # radar: range, azimuth, radial_velocity, rcs float32 in radar_link; obstacles ahead, closing at 0 m/s
        targets = radar[-1]
        assert targets.header.frame_id == "radar_link"
        assert [f.name for f in targets.fields] == ["range", "azimuth", "radial_velocity", "rcs"]
        rav = pointcloud_to_array(targets, ("range", "azimuth", "radial_velocity", "rcs"))
        assert len(rav) >= 1 and np.all(rav[:, 0] > 0) and np.all(np.abs(rav[:, 1]) <= math.radians(45) + 0.02)

        # IMU at rest: gravity on z, nothing else; no orientation; unique, increasing stamps
        sample = imu[-1]
        assert sample.header.frame_id == "imu_link" and sample.orientation_covariance[0] == -1.0
        assert sample.linear_acceleration.z == pytest.approx(9.81, abs=1e-6)
        assert abs(sample.linear_acceleration.x) < 1e-9 and abs(sample.angular_velocity.z) < 1e-9
        assert sample.linear_acceleration_covariance[0] != -1.0 and sample.angular_velocity_covariance[0] != -1.0
        imu_stamps = [stamp_of(m) for m in list(imu)]
        assert imu_stamps == sorted(set(imu_stamps)), "IMU stamps must be unique and increasing"

        # odometry: odom -> base_link at the route start, standing still
        o = odom[-1]
        assert (o.header.frame_id, o.child_frame_id) == ("odom", "base_link")
        assert o.twist.twist.linear.x == 0.0 and o.pose.pose.orientation.w == pytest.approx(1.0)

        report = json.loads(status[-1].data)
        for key in ("episode", "seed", "time_s", "collision", "collided_with", "lane_departure",
                    "lane_departure_steps", "progress_m", "progress_fraction", "lateral_offset_m",
                    "speed_mps", "route_complete", "done", "command"):
            assert key in report, key
        assert report["seed"] == 3 and not report["collision"] and not report["done"]
    finally:
        spinner.shutdown()  # no callback may run while the physics server disconnects
        node.close()


def test_drives_on_commands_brakes_without_them_refuses_bad_ones_and_resets(probe, spin_nodes, make_sim):
    node = make_sim(seed=5)
    # a box in the lane 14 m ahead (the course starts with a 20 m straight along +x)
    box = node.scene.add_obstacle(14.0, 0.0, size=(1.0, 1.0, 1.5))
    odom = probe.collect(Odometry, "/odom", SENSOR)
    scenes = probe.collect(String, "/sim/scene", LATCHED)
    status = probe.collect(String, "/sim/vehicle_status", COMMAND)
    command_pub = probe.create_publisher(VehicleCommand, "/msvla/vehicle/command", COMMAND)
    reset_pub = probe.create_publisher(Int64, "/sim/reset", COMMAND)
    spinner = spin_nodes(node, probe)

    def send(steering=0.0, throttle=0.0, brake=0.0, frame="base_link"):
        cmd = VehicleCommand(steering=steering, throttle=throttle, brake=brake, model_id="test")
        cmd.header.stamp = probe.now_stamp()
        cmd.header.frame_id = frame
        command_pub.publish(cmd)

    def drive_until(condition, timeout_s, **command):
        """Publish the command at 20 Hz (the shield publishes at 50) until the condition holds."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            send(**command)
            if condition():
                return True
            time.sleep(0.05)
        return False

    def speed():
        return odom[-1].twist.twist.linear.x if odom else float("nan")

    try:
        wait_for_subscribers(command_pub)
        assert Spinner.wait_for(lambda: odom and scenes, 10.0)
        assert speed() == 0.0

        # throttle: the car speeds up (3 m/s^2 at full throttle, less rolling resistance)
        started = time.monotonic()
        assert drive_until(lambda: speed() > 2.0, 5.0, throttle=1.0), f"speed {speed()}"
        assert time.monotonic() - started > 0.5, "the car cannot beat 3 m/s^2"
        assert node.commands_applied > 0 and odom[-1].pose.pose.position.x > 0.0

        # brake: the car stops (8 m/s^2)
        assert drive_until(lambda: speed() == 0.0, 3.0, brake=1.0), f"speed {speed()}"

        # no command for longer than command_timeout: the drive-by-wire watchdog brakes to a stop
        assert drive_until(lambda: speed() > 1.5, 5.0, throttle=1.0), f"speed {speed()}"
        timeouts = node.command_timeouts
        stopped_sending = time.monotonic()
        assert Spinner.wait_for(lambda: speed() == 0.0, 5.0), f"speed {speed()}"
        assert time.monotonic() - stopped_sending > 0.4, "braked before command_timeout"
        assert node.command_timeouts == timeouts + 1
        assert Spinner.wait_for(lambda: json.loads(status[-1].data)["speed_mps"] == 0.0, 2.0)
        report = json.loads(status[-1].data)
        assert report["command"] == {"steering": 0.0, "throttle": 0.0, "brake": 1.0, "model_id": "",
                                     "source": "timeout"}
        assert report["progress_m"] > 1.0 and not report["collision"]

        # a NaN command and one in another frame are refused, counted and read as full brake
        for bad in ({"throttle": float("nan")}, {"throttle": 0.25, "frame": "map"}):
            send(throttle=0.25)
            assert Spinner.wait_for(lambda: node.scene.command[1:] == (0.25, 0.0), 5.0)
            applied = node.commands_applied
            send(**bad)
            assert Spinner.wait_for(lambda: node.scene.command[1:] == (0.0, 1.0), 5.0)
            assert node.commands_applied == applied
        assert node.refused["non_finite"] == 1 and node.refused["wrong_frame"] == 1 and node.commands_refused == 2
        assert node.last_command["source"] == "refused"

        # driving into the box: a status reporting the collision comes at once, not only at 10 Hz
        assert drive_until(lambda: any(json.loads(m.data)["collision"] for m in status), 10.0, throttle=1.0)
        hit = next(json.loads(m.data) for m in status if json.loads(m.data)["collision"])
        assert hit["collided_with"] == box and hit["done"] and node.collisions == 1
        assert hit["progress_m"] == pytest.approx(14.0 - 0.5 - 3.6, abs=0.5), "front bumper at the box"
        level, _, values = node._report()
        assert values["collisions"] == 1 and values["commands_refused"] == 2 and values["frames_odom"] > 0

        # reset: a negative seed is refused, a new seed starts episode 2 with that seed
        wait_for_subscribers(reset_pub)
        reset_pub.publish(Int64(data=-4))
        reset_pub.publish(Int64(data=42))
        assert Spinner.wait_for(lambda: json.loads(scenes[-1].data)["seed"] == 42, 10.0)
        scene = json.loads(scenes[-1].data)
        assert scene["episode"] == 2 and node.episode == 2 and node.seed == 42
        assert Spinner.wait_for(lambda: abs(odom[-1].pose.pose.position.x) < 1e-9, 5.0), "car back at the start"
    finally:
        spinner.shutdown()  # no callback may run while the physics server disconnects
        node.close()
