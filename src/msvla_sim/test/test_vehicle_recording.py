"""Recorded expert driving episodes read back with rosbags as the live vehicle graph's topics."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pybullet")
pytest.importorskip("rosbags")

from rosbags.highlevel import AnyReader  # noqa: E402

from msvla_core.data.bag_types import msvla_typestore  # noqa: E402
from msvla_core.data.bags import BagSpec, validate_bag  # noqa: E402
from msvla_core.data.image import image_to_rgb  # noqa: E402
from msvla_core.data.pointcloud import pointcloud_to_array  # noqa: E402
from msvla_core.data.samples import iter_samples  # noqa: E402
from msvla_sim.record_vehicle import episode_dir, main as record_main  # noqa: E402
from msvla_sim.vehicle_expert import INSTRUCTION_KINDS, instruction_kind  # noqa: E402
from msvla_sim.vehicle_recording import (COMMAND_TOPIC, Perturbation, SteeringNoise, SENSOR_RATES_HZ, TOPICS,  # noqa: E402
                                         TRAJECTORY_DT_S, TRAJECTORY_HORIZON, TRAJECTORY_TOPIC,
                                         choose_instruction, episode_rng, record_vehicle_episode,
                                         trajectory_in_base)
from msvla_sim.vehicle_scene import VehicleScene  # noqa: E402
from msvla_sim.recording import episode_start_ns  # noqa: E402

SPEC = Path(__file__).resolve().parents[3] / "config" / "training" / "bags" / "vehicle_drive.yaml"
SECONDS = 3.0
ONCE = ("/sim/scene", "/camera/extrinsics", "/msvla/instruction", "/sim/vehicle_status")
SENSOR_TOPICS = {"/camera/color/image_raw": "camera", "/camera/color/camera_info": "camera",
                 "/lidar/points": "lidar", "/radar/targets": "radar", "/imu/data": "imu", "/odom": "odom"}
# Topics the bag spec cannot express yet (bags.py: Image/JointState modalities, GraspPose labels).
NS = 1_000_000_000


def read_bag(path: Path) -> tuple[dict[str, list], dict[str, list]]:
    """(topic -> [(log time, message)], topic -> [raw bytes]) in log-time order."""
    out: dict[str, list] = {}
    raws: dict[str, list] = {}
    with AnyReader([path], default_typestore=msvla_typestore()) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == TOPICS
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
            raws.setdefault(conn.topic, []).append(bytes(raw))
    return out, raws


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * NS + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    out = tmp_path_factory.mktemp("vehicle")
    assert record_main(["--output", str(out / "mcap"), "--episodes", "2", "--seed-start", "10",
                        "--seconds", str(SECONDS), "--format", "mcap"]) == 0
    assert record_main(["--output", str(out / "sqlite"), "--episodes", "1", "--seed-start", "20",
                        "--seconds", str(SECONDS), "--format", "sqlite3",
                        "--kinds", "stop_before_obstacle"]) == 0
    assert record_main(["--output", str(out / "again"), "--episodes", "1", "--seed-start", "10",
                        "--seconds", str(SECONDS), "--format", "mcap"]) == 0
    bags = {10: episode_dir(out / "mcap", 10), 11: episode_dir(out / "mcap", 11),
            20: episode_dir(out / "sqlite", 20)}
    return {"bags": bags, "again": episode_dir(out / "again", 10), "root": out,
            "read": {seed: read_bag(path) for seed, path in bags.items()}}


def test_layout_storage_and_topics(recorded):
    for seed, path in recorded["bags"].items():
        suffix = ".db3" if seed == 20 else ".mcap"
        assert (path / "metadata.yaml").is_file()
        assert [p.suffix for p in path.iterdir() if p.name != "metadata.yaml"] == [suffix]
        msgs, _ = recorded["read"][seed]
        assert set(msgs) == set(TOPICS)  # every topic carries messages


def test_summary_lines(recorded, capsys):
    # A second recording into an existing episode directory is refused without --overwrite.
    with pytest.raises(SystemExit):
        record_main(["--output", str(recorded["root"] / "mcap"), "--episodes", "1", "--seed-start", "10",
                     "--seconds", "1"])
    out = recorded["root"] / "lines"
    assert record_main(["--output", str(out), "--episodes", "1", "--seed-start", "30", "--seconds", "0.5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    line = json.loads(lines[-2])
    assert set(line) >= {"seed", "kind", "instruction", "progress_fraction", "collision",
                         "lane_departure_steps", "seconds"}
    assert line["seed"] == 30 and line["seconds"] == 0.5 and line["kind"] in INSTRUCTION_KINDS
    assert instruction_kind(line["instruction"]) == line["kind"]
    assert "episodes/s" in lines[-1] and "KiB per episode" in lines[-1] and "collisions" in lines[-1]


def test_once_topics_and_episode_clock(recorded):
    for seed, (msgs, _) in recorded["read"].items():
        start = episode_start_ns(seed)
        for topic in ONCE:
            assert len(msgs[topic]) == 1, topic
        assert min(t for series in msgs.values() for t, _ in series) == start
        scene = json.loads(msgs["/sim/scene"][0][1].data)
        assert scene["episode"] == seed and scene["seed"] == seed and scene["stamp_ns"] == start
        assert {"front_camera_optical_frame", "lidar_link", "radar_link", "imu_link"} <= set(scene["sensors"])
        t, ext = msgs["/camera/extrinsics"][0]
        assert (t, stamp_ns(ext)) == (start, start)
        assert (ext.header.frame_id, ext.child_frame_id) == ("base_link", "front_camera_optical_frame")
        text = msgs["/msvla/instruction"][0][1].data
        assert msgs["/msvla/instruction"][0][0] == start and instruction_kind(text) in INSTRUCTION_KINDS
        status = json.loads(msgs["/sim/vehicle_status"][0][1].data)
        assert status["instruction"] == text and status["seed"] == seed
        assert status["end"] == "time_limit" and math.isclose(status["time_s"], SECONDS)
    text = recorded["read"][20][0]["/msvla/instruction"][0][1].data
    assert instruction_kind(text) == "stop_before_obstacle"


def test_rates_counts_and_monotone_stamps(recorded):
    for seed, (msgs, _) in recorded["read"].items():
        start = episode_start_ns(seed)
        for topic, series in msgs.items():
            logs = [t for t, _ in series]
            assert logs == sorted(logs), topic
            if hasattr(series[0][1], "header"):
                stamps = [stamp_ns(m) for _, m in series]
                assert stamps == sorted(stamps), topic
                if topic in SENSOR_TOPICS:
                    assert len(set(stamps)) == len(stamps), topic
                    assert logs == stamps, topic  # sensors: log time = header stamp
        for topic, sensor in SENSOR_TOPICS.items():
            rate = SENSOR_RATES_HZ[sensor]
            assert len(msgs[topic]) == int(round(SECONDS * rate)) + 1, topic  # both ends included
            stamps = [stamp_ns(m) for _, m in msgs[topic]]
            assert stamps[0] == start and stamps[-1] == start + int(SECONDS * NS)
            assert set(np.diff(stamps)) == {int(round(NS / rate))}, topic
        assert len(msgs[COMMAND_TOPIC]) == int(round(SECONDS * 10))
        assert len(msgs[TRAJECTORY_TOPIC]) == len(msgs[COMMAND_TOPIC])


def test_sensor_payloads(recorded):
    msgs, _ = recorded["read"][10]
    image = msgs["/camera/color/image_raw"][5][1]
    assert (image.width, image.height, image.encoding) == (128, 96, "rgb8")
    assert image.header.frame_id == "front_camera_optical_frame"
    assert image_to_rgb(image).shape == (96, 128, 3)
    info = msgs["/camera/color/camera_info"][5][1]
    assert (info.width, info.height) == (128, 96) and info.k[0] > 0 and stamp_ns(info) == stamp_ns(image)
    cloud = msgs["/lidar/points"][5][1]
    assert cloud.header.frame_id == "lidar_link"
    assert [(f.name, f.datatype) for f in cloud.fields] == [(n, 7) for n in ("x", "y", "z", "intensity")]
    points = pointcloud_to_array(cloud, ("x", "y", "z", "intensity"))
    assert len(points) > 100 and np.all(np.isfinite(points))
    radar = msgs["/radar/targets"][5][1]
    assert radar.header.frame_id == "radar_link"
    assert [f.name for f in radar.fields] == ["range", "azimuth", "radial_velocity", "rcs"]
    imu = msgs["/imu/data"][0][1]
    assert imu.header.frame_id == "imu_link" and imu.orientation_covariance[0] == -1.0
    assert math.isclose(imu.linear_acceleration.z, 9.81)
    odom = msgs["/odom"][0][1]
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")


def test_command_labels(recorded):
    for seed, (msgs, _) in recorded["read"].items():
        cameras = {stamp_ns(m) for _, m in msgs["/camera/color/image_raw"]}
        commands = [m for _, m in msgs[COMMAND_TOPIC]]
        for t, cmd in msgs[COMMAND_TOPIC]:
            assert t == stamp_ns(cmd) and t in cameras  # each command answers a camera frame
            assert cmd.header.frame_id == "base_link" and cmd.model_id == "expert"
            values = (cmd.steering, cmd.throttle, cmd.brake)
            assert all(math.isfinite(v) for v in values)
            assert 0.0 <= cmd.throttle <= 1.0 and 0.0 <= cmd.brake <= 1.0 and abs(cmd.steering) <= 0.6
            assert not (cmd.throttle > 0.0 and cmd.brake > 0.0)
        assert any(c.throttle > 0.0 for c in commands)  # the expert drives off


def _yaw(q) -> float:
    return 2.0 * math.atan2(q.z, q.w)


def test_trajectory_labels(recorded):
    dt = int(round(TRAJECTORY_DT_S * NS))
    for seed, (msgs, _) in recorded["read"].items():
        odom = {stamp_ns(m): m.pose.pose for _, m in msgs["/odom"]}
        commands = [stamp_ns(m) for _, m in msgs[COMMAND_TOPIC]]
        paths = msgs[TRAJECTORY_TOPIC]
        assert [stamp_ns(p) for _, p in paths] == commands  # stamped like the command
        checked = 0
        for log, path in paths:
            t = stamp_ns(path)
            assert log == t + TRAJECTORY_HORIZON * dt  # written once its future has happened
            assert path.header.frame_id == "base_link"
            assert len(path.poses) == TRAJECTORY_HORIZON  # no collision: every waypoint is known
            assert [stamp_ns(p) for p in path.poses] == [t + (j + 1) * dt for j in range(TRAJECTORY_HORIZON)]
            assert all(p.header.frame_id == "base_link" for p in path.poses)
            xy = np.array([[p.pose.position.x, p.pose.position.y] for p in path.poses])
            assert np.all(np.isfinite(xy)) and np.all(np.diff(xy[:, 0]) >= -1e-9)  # no reversing
            # Each waypoint is the car's odometry at its instant, in base_link at the label's instant.
            base = odom[t]
            c, s = math.cos(_yaw(base.orientation)), math.sin(_yaw(base.orientation))
            for p in path.poses:
                future = odom.get(stamp_ns(p))
                if future is None:
                    continue  # beyond the recorded sensors (the last 2 s)
                dx, dy = future.position.x - base.position.x, future.position.y - base.position.y
                assert math.isclose(p.pose.position.x, c * dx + s * dy, abs_tol=1e-6)
                assert math.isclose(p.pose.position.y, -s * dx + c * dy, abs_tol=1e-6)
                checked += 1
        assert checked > 0
    # By the end of a 3 s episode from standstill the car has moved forward.
    last = recorded["read"][10][0][TRAJECTORY_TOPIC][-1][1]
    assert last.poses[-1].pose.position.x > 1.0


def _ending(path: Path) -> tuple[dict, dict]:
    msgs, _ = read_bag(path)
    return msgs, json.loads(msgs["/sim/vehicle_status"][0][1].data)


def test_episode_ends_at_route_completion_with_full_trajectory_labels(tmp_path):
    assert record_main(["--output", str(tmp_path), "--episodes", "1", "--seed-start", "5", "--course-length",
                        "10", "--n-static", "0", "--n-moving", "0", "--kinds", "follow_lane",
                        "--seconds", "10"]) == 0
    msgs, status = _ending(episode_dir(tmp_path, 5))
    assert status["end"] == "route_complete" and status["route_complete"] and status["time_s"] < 10.0
    end = episode_start_ns(5) + int(round(status["time_s"] * NS))
    assert stamp_ns(msgs["/imu/data"][-1][1]) == end  # the sensors stop at completion
    assert len(msgs["/imu/data"]) == int(round(status["time_s"] * 100)) + 1
    # The expert drove on, unrecorded, for the horizon: every label has its 20 waypoints.
    assert all(len(p.poses) == TRAJECTORY_HORIZON for _, p in msgs[TRAJECTORY_TOPIC])
    assert len(msgs[TRAJECTORY_TOPIC]) == len(msgs[COMMAND_TOPIC])


class _RearEndedScene(VehicleScene):
    """Every episode gets a box overtaking the car from behind at 12 m/s: a collision the expert
    (which plans only for obstacles ahead) cannot avoid."""

    def reset(self, *args, **kwargs):
        description = super().reset(*args, **kwargs)
        self.add_obstacle(-10.0, 0.0, velocity=(12.0, 0.0))
        return description


def test_trajectory_labels_stop_at_a_collision(tmp_path):
    scene = _RearEndedScene(course_length_m=60.0, physics_dt_s=0.01)
    try:
        summary = record_vehicle_episode(scene, 7, tmp_path / "bag", episode_rng(7), seconds=5.0,
                                         n_static=0, n_moving=0)
    finally:
        scene.close()
    assert summary["collision"] and summary["end"] == "collision" and summary["seconds"] < 2.0
    msgs, status = _ending(tmp_path / "bag")
    assert status["collision"] and status["end"] == "collision"
    end = episode_start_ns(7) + int(round(summary["seconds"] * NS))
    paths = [p for _, p in msgs[TRAJECTORY_TOPIC]]
    assert len(paths) == len(msgs[COMMAND_TOPIC]) > 0
    for path in paths:  # nothing after the contact; all that is known before it
        stamps = [stamp_ns(p) for p in path.poses]
        assert all(t <= end for t in stamps)
        assert len(stamps) == min(TRAJECTORY_HORIZON, (end - stamp_ns(path)) // int(TRAJECTORY_DT_S * NS))
    assert len(paths[-1].poses) < TRAJECTORY_HORIZON
    assert max(t for series in msgs.values() for t, _ in series) == end  # labels written by the contact


def test_trajectory_is_cut_at_the_last_known_step():
    history = np.zeros((31, 3))
    history[:, 0] = np.arange(31) * 0.5          # driving along +x in odom ...
    history[:, 2] = math.pi / 2                  # ... while facing +y: forward motion is to the right
    way = trajectory_in_base(history, 5, 10, 20, last=30)
    assert way.shape == (2, 3)                   # steps 15 and 25; 35 is past the collision
    np.testing.assert_allclose(way[:, 0], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(way[:, 1], [-5.0, -10.0])
    np.testing.assert_allclose(way[:, 2], [0.0, 0.0], atol=1e-12)


def test_bag_spec_validates_the_recordings_and_forms_driving_samples(recorded):
    spec = BagSpec.load(SPEC)
    assert set(spec.modalities) == {"camera", "lidar", "radar", "imu", "proprio"} and spec.reference == "camera"
    assert set(spec.labels) == {"control", "trajectory"}
    for seed, path in recorded["bags"].items():
        summary = validate_bag(path, spec)
        assert summary.storage == ("sqlite3" if seed == 20 else "mcap")
        assert summary.message_counts["/camera/color/image_raw"] == int(SECONDS * 10) + 1
        counters = Counter()
        samples = list(iter_samples(path, spec, counters))
        assert len(samples) == int(SECONDS * 10) + 1 and counters["no_instruction"] == 0
        first = samples[0]
        assert first.raw["camera"].shape == (96, 128, 3) and first.extrinsics is not None
        assert instruction_kind(first.instruction) in INSTRUCTION_KINDS
        lidar, radar = first.raw["lidar"], first.raw["radar"]
        assert lidar.dtype == np.float32 and lidar.ndim == 2 and lidar.shape[1] == 4 and len(lidar) > 100
        assert radar.dtype == np.float32 and radar.ndim == 2 and radar.shape[1] == 4
        for s in samples[2:]:  # 0.2 s IMU windows (100 Hz, both ends included) ending at the frame itself
            imu = s.raw["imu"]
            assert imu.shape == (21, 7) and imu[-1, 6] == 0.0
            assert np.all(np.diff(imu[:, 6]) > 0) and imu[0, 6] >= -0.2 - 1e-9
            np.testing.assert_allclose(imu[:, 2], 9.81)  # gravity on z, level road
            assert set(s.raw["proprio"]) == {"position", "velocity"}
            assert s.raw["proprio"]["velocity"].shape == (2,)
        assert samples[-1].labels == {}  # the episode ends at its last frame: no command answers it
        for s in samples[:-1]:  # every other camera frame has the expert's command and its future path
            control, path_label = s.labels["control"], s.labels["trajectory"]
            assert set(control) == {"steering", "throttle", "brake"}
            assert not (control["throttle"] > 0 and control["brake"] > 0)
            assert path_label["waypoints"].shape == (20, 3)
            np.testing.assert_allclose(path_label["times"], np.arange(1, 21) * 0.1, atol=1e-6)


def test_same_seed_same_messages(recorded):
    _, first = recorded["read"][10]
    _, again = read_bag(recorded["again"])
    assert first[COMMAND_TOPIC] == again[COMMAND_TOPIC]
    assert first[TRAJECTORY_TOPIC] == again[TRAJECTORY_TOPIC]
    assert first["/lidar/points"] == again["/lidar/points"]
    assert first["/camera/color/image_raw"] == again["/camera/color/image_raw"]
    assert first[COMMAND_TOPIC] != recorded["read"][11][1][COMMAND_TOPIC]


def test_instruction_choice():
    assert choose_instruction(episode_rng(3)) == choose_instruction(episode_rng(3))
    for seed in range(20):
        kind, text = choose_instruction(episode_rng(seed), ("drive_slowly",))
        assert kind == "drive_slowly" and instruction_kind(text) == kind
    with pytest.raises(ValueError):
        choose_instruction(episode_rng(0), ("fly",))


def test_rates_match_the_live_node():
    pytest.importorskip("rclpy")
    from msvla_sim.vehicle_sim_node import PARAMS

    defaults = {p.name: p.default for p in PARAMS}
    assert defaults["physics_rate_hz"] == 100.0
    for sensor, rate in SENSOR_RATES_HZ.items():
        assert defaults[f"{sensor}_rate_hz"] == rate
    assert (defaults["image_width"], defaults["image_height"]) == (128, 96)


def test_steering_noise_is_a_stationary_ou_process():
    noise = SteeringNoise(np.random.default_rng(0), 0.08, 0.8, 0.1)
    values = np.array([noise.step() for _ in range(20000)])
    assert np.std(values) == pytest.approx(0.08, rel=0.1) and abs(np.mean(values)) < 0.01
    lag1 = np.corrcoef(values[:-1], values[1:])[0, 1]
    assert lag1 == pytest.approx(math.exp(-0.1 / 0.8), abs=0.03)  # correlated over the time constant
    quiet = SteeringNoise(np.random.default_rng(0), 0.0, 0.8, 0.1)
    assert {quiet.step() for _ in range(10)} == {0.0}


def test_perturbation_is_validated():
    with pytest.raises(ValueError, match="steering_noise_rad"):
        Perturbation(steering_noise_rad=-0.1)
    with pytest.raises(ValueError, match="noise_time_constant_s"):
        Perturbation(noise_time_constant_s=0.0)
    with pytest.raises(ValueError, match="stop_for_crossing"):
        Perturbation(stop_for_crossing=1.5)
    with pytest.raises(ValueError, match="stop_hold_s"):
        Perturbation(stop_hold_s=(2.0, 1.0))
    scene = VehicleScene(course_length_m=60.0, physics_dt_s=0.01)
    try:
        with pytest.raises(ValueError, match="command_delay_s=0.1 must be shorter"):
            record_vehicle_episode(scene, 1, Path("/nonexistent/never-written"), episode_rng(1), seconds=1.0,
                                   perturbation=Perturbation(command_delay_s=0.1))
    finally:
        scene.close()


def test_perturbed_episodes_keep_clean_labels_and_drift(tmp_path):
    """The car executes noisy steering but the labels are the expert's answer to each state it is in."""
    scene = VehicleScene(course_length_m=80.0, physics_dt_s=0.01)
    try:
        record_vehicle_episode(scene, 3, tmp_path / "clean", episode_rng(3), seconds=6.0, n_static=0, n_moving=0,
                               kinds=("follow_lane",))
        record_vehicle_episode(scene, 3, tmp_path / "noisy", episode_rng(3), seconds=6.0, n_static=0, n_moving=0,
                               kinds=("follow_lane",), perturbation=Perturbation(steering_noise_rad=0.15,
                                                                                 max_initial_speed_mps=5.0))
    finally:
        scene.close()
    (clean, _), (noisy, _) = read_bag(tmp_path / "clean"), read_bag(tmp_path / "noisy")
    speed = [m.twist.twist.linear.x for _, m in noisy["/odom"]]
    assert speed[0] > 0.0 and [m.twist.twist.linear.x for _, m in clean["/odom"]][0] == 0.0
    y_clean = np.array([m.pose.pose.position.y for _, m in clean["/odom"]])
    y_noisy = np.array([m.pose.pose.position.y for _, m in noisy["/odom"]])
    assert np.max(np.abs(y_noisy[:len(y_clean)] - y_clean[:len(y_noisy)])) > 0.05  # the car was pushed off
    steer = np.array([m.steering for _, m in noisy[COMMAND_TOPIC]])
    assert np.all(np.abs(steer) <= 0.6) and np.std(steer) > 0.0  # the expert steers back
    joints = [m for _, m in noisy["/joint_states"]]
    assert list(joints[0].name) == ["front_steering_joint", "rear_wheel_joint"]
    assert joints[0].header.frame_id == "base_link" and len(joints) == len(noisy["/odom"])
    # The wheel spins at speed / radius.
    assert joints[0].velocity[1] == pytest.approx(speed[0] / 0.33, rel=1e-6)


def test_forced_stops_halt_the_car_while_the_labels_drive_on(tmp_path):
    """A forced stop brakes the car to a standstill and holds it; the expert's labels keep asking to go."""
    scene = VehicleScene(course_length_m=120.0, physics_dt_s=0.01)
    try:
        summary = record_vehicle_episode(scene, 5, tmp_path / "stops", episode_rng(5), seconds=20.0, n_static=0,
                                         n_moving=0, kinds=("follow_lane",),
                                         perturbation=Perturbation(forced_stops_per_min=12.0, stop_hold_s=(1.0, 1.0)))
    finally:
        scene.close()
    assert summary["forced_stops"] >= 1
    msgs, _ = read_bag(tmp_path / "stops")
    speed = np.array([m.twist.twist.linear.x for _, m in msgs["/odom"]])
    moving = np.flatnonzero(speed > 2.0)
    assert moving.size and np.any(speed[moving[0]:] < 0.1), "the car never came to a standstill after moving"
    labels = {ns: m for ns, m in msgs[COMMAND_TOPIC]}
    odom = {ns: m.twist.twist.linear.x for ns, m in msgs["/odom"]}
    standing = [labels[ns] for ns in labels if ns in odom and odom[ns] < 0.1 and ns > msgs["/odom"][moving[0]][0]]
    assert standing and all(m.throttle > 0.0 and m.brake == 0.0 for m in standing), \
        "standing mid-route on a clear road, the expert's label must be to drive on"
