"""Tests of the ROS-free driving scene and its scripted expert, against real PyBullet geometry."""

import json
import math
import os
import sys

import numpy as np
import pytest

# Import the package from this source tree when it is not installed.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)

from msvla_sim.vehicle_expert import (INSTRUCTION_KINDS, PHRASINGS, VehicleExpert,  # noqa: E402
                                      instruction_kind, sample_instruction)
from msvla_sim.vehicle_scene import (GRAVITY, VehicleParams, VehicleScene,  # noqa: E402
                                     generate_route)

PARAMS = VehicleParams()


@pytest.fixture(scope="module")
def scene():
    s = VehicleScene(course_length_m=80.0)
    yield s
    s.close()


def _empty(scene, seed=0):
    """A course without obstacles; the car at the start of its straight lead-in, heading +x."""
    scene.reset(seed, n_static=0, n_moving=0)
    st = scene.vehicle_state()
    assert (st.x, st.y, st.yaw, st.speed_mps) == (0.0, 0.0, 0.0, 0.0)
    return scene


def _run(scene, steering, throttle, brake, seconds):
    scene.apply_command(steering, throttle, brake)
    for _ in range(int(round(seconds / scene.physics_dt_s))):
        scene.step()


# ------------------------------------------------------------------------------ reset / course
def test_reset_is_deterministic_for_a_seed(scene):
    first = scene.reset(11)
    scan = scene.lidar_scan()
    again = scene.reset(11)
    assert again == first
    np.testing.assert_array_equal(scene.lidar_scan(), scan)
    other = VehicleScene(course_length_m=80.0)
    try:
        assert other.reset(11) == first
        np.testing.assert_array_equal(other.lidar_scan(), scan)
    finally:
        other.close()
    assert scene.reset(12)["route"] != first["route"]


def test_description_is_json_and_matches_the_request(scene):
    for seed in range(4):
        desc = scene.reset(seed, n_static=4, n_moving=2)
        json.loads(json.dumps(desc))
        assert desc["seed"] == seed
        route = desc["route"]
        assert route["length_m"] == pytest.approx(80.0, abs=0.5)
        assert route["spacing_m"] == pytest.approx(0.5)
        assert route["start"] == [0.0, 0.0, 0.0]
        obstacles = desc["obstacles"]
        kinds = [o["kind"] for o in obstacles]
        assert kinds.count("static") <= 4 and kinds.count("static") >= 3
        assert len(kinds) - kinds.count("static") >= 1
        assert kinds.count("lead") <= 1
        half = 0.5 * desc["lane_width_m"]
        for o in obstacles:
            assert o["position"][2] == pytest.approx(0.5 * o["size"][2])
            if o["kind"] == "static":
                if o["in_lane"]:
                    assert abs(o["lateral"]) < half
                else:
                    assert abs(o["lateral"]) > half + 0.5
            if o["kind"] == "crossing":
                assert not o["in_lane"] and o["phase"] == "waiting"
    # The road does not depend on how many obstacles are asked for.
    a = scene.reset(3, n_static=0, n_moving=0)["route"]
    assert scene.reset(3, n_static=5, n_moving=2)["route"] == a


def test_route_projection_inverts_pose_at():
    route = generate_route(np.random.default_rng(4), 120.0, 3.5)
    assert route.length_m == pytest.approx(120.0, abs=0.5)
    # The curvature integrates to the headings.
    assert np.allclose(np.diff(route.headings), route.curvature[:-1] * 0.5, atol=1e-9)
    for s in np.linspace(1.0, route.length_m - 1.0, 17):
        p, h = route.pose_at(s)
        normal = np.array([-math.sin(h), math.cos(h)])
        s1, lat, h1 = route.project(p + 1.2 * normal)
        assert s1 == pytest.approx(s, abs=0.05)
        assert lat == pytest.approx(1.2, abs=0.02)
        assert abs(math.remainder(h1 - h, 2 * math.pi)) < 0.05


# -------------------------------------------------------------------------------- vehicle model
def test_full_throttle_for_one_second_gives_three_metres_per_second(scene):
    _empty(scene)
    _run(scene, 0.0, 1.0, 0.0, 1.0)
    st = scene.vehicle_state()
    # 3 m/s^2 less the rolling resistance.
    expected = PARAMS.throttle_accel_mps2 - PARAMS.rolling_resistance_mps2
    assert st.speed_mps == pytest.approx(expected, abs=0.02)
    assert st.x == pytest.approx(0.5 * expected, abs=0.05)
    assert abs(st.y) < 1e-9 and st.yaw == 0.0


def test_braking_stops_and_never_reverses(scene):
    _empty(scene)
    _run(scene, 0.0, 1.0, 0.0, 1.0)
    v0 = scene.vehicle_state().speed_mps
    scene.apply_command(0.0, 0.0, 1.0)
    speeds, xs = [], []
    for _ in range(100):
        scene.step()
        speeds.append(scene.vehicle_state().speed_mps)
        xs.append(scene.vehicle_state().x)
    assert min(speeds) == 0.0
    # Full brake: 8 m/s^2 (+ rolling resistance) -> stopped within v0 / 8 s.
    t_stop = (speeds.index(0.0) + 1) * scene.physics_dt_s
    assert t_stop == pytest.approx(v0 / (PARAMS.brake_decel_mps2 + PARAMS.rolling_resistance_mps2),
                                   abs=2 * scene.physics_dt_s)
    assert all(v >= 0.0 for v in speeds)
    assert all(b >= a for a, b in zip(xs, xs[1:]))  # no rolling back
    # Standing still with no pedal: stays put (rolling resistance does not push backwards).
    _run(scene, 0.0, 0.0, 0.0, 1.0)
    assert scene.vehicle_state().speed_mps == 0.0


def test_steering_is_clamped_and_lags(scene):
    _empty(scene)
    applied = scene.apply_command(2.0, 0.3, -1.0)
    assert applied == (PARAMS.max_steering_rad, 0.3, 0.0)
    scene.step()
    first = scene.vehicle_state().steering_rad
    assert 0.0 < first < 0.5 * PARAMS.max_steering_rad
    _run(scene, 2.0, 0.3, 0.0, 1.0)
    assert scene.vehicle_state().steering_rad == pytest.approx(PARAMS.max_steering_rad, rel=1e-3)
    # Positive steering turns left (REP-103: yaw counter-clockwise, y to the left).
    st = scene.vehicle_state()
    assert st.yaw > 0.0 and st.y > 0.0 and st.yaw_rate_radps > 0.0
    assert st.yaw_rate_radps == pytest.approx(
        st.speed_mps * math.tan(st.steering_rad) / PARAMS.wheelbase_m, rel=0.05)


@pytest.mark.parametrize("bad", [(float("nan"), 0.5, 0.0), (0.1, float("inf"), 0.0),
                                 (0.1, 0.5, float("nan")), ("x", 0.5, 0.0)])
def test_non_finite_command_is_full_brake_with_steering_held(scene, bad):
    _empty(scene)
    scene.set_vehicle_state(0.0, 0.0, 0.0, speed_mps=5.0)
    scene.apply_command(0.2, 0.5, 0.0)
    scene.step()
    assert scene.apply_command(*bad) == (0.2, 0.0, 1.0)
    v0 = scene.vehicle_state().speed_mps
    n_steps = 10
    for _ in range(n_steps):
        scene.step()
    dv = v0 - scene.vehicle_state().speed_mps
    decel = PARAMS.brake_decel_mps2 + PARAMS.rolling_resistance_mps2
    assert dv == pytest.approx(decel * n_steps * scene.physics_dt_s, rel=1e-6)
    assert scene.command == (0.2, 0.0, 1.0)


def test_step_advances_whole_physics_steps(scene):
    _empty(scene)
    counts = [scene.step(0.05) for _ in range(4)]
    assert counts == [2, 3, 2, 3]
    assert scene.status().steps == 10
    assert scene.time_s == pytest.approx(0.2)
    assert scene.step(0.0) == 0
    assert scene.step() == 1
    with pytest.raises(ValueError):
        scene.step(float("nan"))


# ------------------------------------------------------------------------------------ sensors
def test_imu_reads_gravity_and_motion(scene):
    _empty(scene)
    lin, ang = scene.imu()
    np.testing.assert_allclose(lin, [0.0, 0.0, GRAVITY])
    np.testing.assert_allclose(ang, [0.0, 0.0, 0.0])
    _run(scene, 0.0, 1.0, 0.0, 0.5)
    lin, _ = scene.imu()
    assert lin[0] == pytest.approx(PARAMS.throttle_accel_mps2 - PARAMS.rolling_resistance_mps2)
    assert lin[2] == pytest.approx(GRAVITY)
    # Steady left turn at constant speed: centripetal acceleration v * yaw_rate to the left.
    scene.set_vehicle_state(0.0, 0.0, 0.0, speed_mps=5.0)
    _run(scene, 0.3, PARAMS.rolling_resistance_mps2 / PARAMS.throttle_accel_mps2, 0.0, 1.0)
    lin, ang = scene.imu()
    odo = scene.odometry()
    assert lin[0] == pytest.approx(0.0, abs=1e-6)
    assert ang[2] == pytest.approx(odo.yaw_rate_radps) and ang[2] > 0.1
    assert lin[1] == pytest.approx(odo.speed_mps * odo.yaw_rate_radps)
    assert odo.as_array().shape == (5,)


def test_lidar_sees_a_box_ahead_and_not_the_ego_car(scene):
    _empty(scene)
    distance, depth = 10.0, 1.0
    scene.add_obstacle(distance, 0.0, size=(depth, 2.0, 2.0))
    pts = scene.lidar_scan()
    assert pts.dtype == np.float32 and pts.ndim == 2 and pts.shape[1] == 4
    assert 0 < len(pts) <= scene.lidar.n_azimuth * len(scene.lidar.elevations_deg)
    assert np.all((pts[:, 3] >= 0.0) & (pts[:, 3] <= 1.0))
    mount = scene.lidar.mount
    ground = -mount.z
    above = pts[pts[:, 2] > ground + 0.1]
    ahead = above[np.abs(above[:, 1]) < 0.5]
    assert len(ahead) >= 3
    # The box's near face, in the LiDAR frame.
    np.testing.assert_allclose(ahead[:, 0], distance - 0.5 * depth - mount.x, atol=0.02)
    # Every return above the ground is on the box (its near face or sides) ...
    assert np.all((above[:, 0] > distance - 0.5 * depth - mount.x - 0.02)
                  & (above[:, 0] < distance + 0.5 * depth - mount.x + 0.02))
    assert np.all(np.abs(above[:, 1]) < 1.0 + 0.02)
    # ... and everything else is ground (z = -mount height): the ego body is transparent.
    np.testing.assert_allclose(pts[pts[:, 2] <= ground + 0.1][:, 2], ground, atol=0.02)
    ranges = np.linalg.norm(pts[:, :3], axis=1)
    assert ranges.min() >= scene.lidar.min_range_m and ranges.max() <= scene.lidar.max_range_m


def _lidar_scan_casting_every_ray(scene):
    """The scan with every ray cast by PyBullet: what lidar_scan must equal."""
    spec = scene.lidar
    t = scene.base_pose() @ spec.mount.matrix()
    dirs = scene._lidar_dirs @ t[:3, :3].T
    origin = t[:3, 3]
    results = scene._pb.rayTestBatch([origin.tolist()] * len(dirs), (origin + spec.max_range_m * dirs).tolist(),
                                     collisionFilterMask=1, physicsClientId=scene._client)
    rows = []
    for ray, (body, _, frac, _, normal) in enumerate(results):
        rng = frac * spec.max_range_m
        if body < 0 or rng < spec.min_range_m:
            continue
        intensity = scene._reflectivity[body] * abs(float(np.dot(normal, dirs[ray])))
        rows.append([*(scene._lidar_dirs[ray] * rng), min(max(intensity, 0.0), 1.0)])
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize("seed", [3, 7, 21])
def test_lidar_scan_equals_casting_every_ray(scene, seed):
    """lidar_scan casts only the rays near an obstacle and meets the ground plane in closed form;
    along a drive past static, crossing and lead obstacles it returns what casting all does."""
    scene.reset(seed, n_static=3, n_moving=2, in_lane_fraction=0.5)
    expert = VehicleExpert("follow_lane")
    obstacle_returns = 0
    for _ in range(12):
        fast, reference = scene.lidar_scan(), _lidar_scan_casting_every_ray(scene)
        assert fast.shape == reference.shape
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-4)
        obstacle_returns += int(np.sum(fast[:, 2] > -scene.lidar.mount.z + 0.1))
        for _ in range(50):
            scene.apply_command(*expert.command(scene))
            scene.step()
    assert obstacle_returns > 0  # the drive passed obstacles, so the cast rays were exercised


def test_radar_target_of_a_box_ahead(scene):
    _empty(scene)
    distance, depth = 10.0, 1.0
    scene.add_obstacle(distance, 0.0, size=(depth, 2.0, 1.5))
    targets = scene.radar_targets()
    assert targets.dtype == np.float32 and targets.shape == (1, 4)
    rng, az, vr, rcs = targets[0]
    assert rng == pytest.approx(distance - 0.5 * depth - scene.radar.mount.x, abs=0.2)
    assert az == pytest.approx(0.0, abs=0.02)
    assert vr == pytest.approx(0.0, abs=0.2)
    assert 0.0 < rcs < 20.0
    # Driving forward at v: a static target closes at v (radial velocity -v).
    scene.set_vehicle_state(0.0, 0.0, 0.0, speed_mps=6.0)
    vr_moving = scene.radar_targets()[0, 2]
    assert vr_moving == pytest.approx(-6.0, abs=0.2)


def test_radar_field_of_view_and_moving_targets(scene):
    _empty(scene)
    front = scene.radar.mount.x
    scene.add_obstacle(front + 5.0, 8.0, size=(1.0, 1.0, 1.5))    # 58 deg left: outside
    scene.add_obstacle(front + 90.0, 0.0, size=(1.0, 1.0, 1.5))   # beyond 80 m
    scene.add_obstacle(-5.0, 0.0, size=(1.0, 1.0, 1.5))           # behind
    assert scene.radar_targets().shape == (0, 4)
    # A target 20 m ahead and 20 m to the left (45 deg minus a little), moving away at 2 m/s.
    scene.add_obstacle(front + 20.0, 19.0, size=(0.4, 0.4, 1.5), shape="cylinder",
                       velocity=(2.0 / math.sqrt(2), 2.0 / math.sqrt(2)))
    rng, az, vr, _ = scene.radar_targets()[0]
    assert az == pytest.approx(math.atan2(19.0 - 0.2 * 19 / math.hypot(20, 19), 20.0), abs=0.02)
    assert rng == pytest.approx(math.hypot(20.0, 19.0) - 0.2, abs=0.2)
    assert vr == pytest.approx(2.0 * math.cos(az - math.pi / 4), abs=0.2)
    # The moving obstacle is moved by the scene (kinematically, at its velocity).
    scene.step(1.0)
    ob = scene.obstacle_states()[-1]
    np.testing.assert_allclose(ob.position[:2], [front + 20.0 + math.sqrt(2), 19.0 + math.sqrt(2)],
                               atol=1e-6)


def test_camera_image_frames_and_a_box_ahead(scene):
    _empty(scene)
    size = (1.0, 2.0, 2.0)
    box_x = 12.0
    scene.add_obstacle(box_x, 0.0, size=size, colour="red")
    rgb, depth, k = scene.render_camera()
    cam = scene.camera
    assert rgb.shape == (cam.height, cam.width, 3) and rgb.dtype == np.uint8
    assert depth.shape == (cam.height, cam.width) and depth.dtype == np.float32
    assert k.shape == (3, 3) and k[0, 0] > 0 and k[2, 2] == 1.0
    # Project the centre of the box's near face with K and the camera mount (optical frame:
    # z forward, x right, y down; a pitched-down camera sees the point above its optical axis).
    m = cam.mount
    p = np.array([box_x - 0.5 * size[0] - m.x, 0.0 - m.y, 0.5 * size[2] - m.z])
    c, s = math.cos(m.pitch), math.sin(m.pitch)
    fwd = c * p[0] - s * p[2]      # along the pitched x axis
    up = s * p[0] + c * p[2]
    u = k[0, 2] + k[0, 0] * (-p[1]) / fwd
    v = k[1, 2] + k[1, 1] * (-up) / fwd
    r, g, b = (int(x) for x in rgb[int(round(v)), int(round(u))])
    assert r > 120 and g < 80 and b < 80, (u, v, r, g, b)
    assert depth[int(round(v)), int(round(u))] == pytest.approx(fwd, rel=0.03)
    # The sky (top row) has no depth; the road straight ahead at the bottom is near.
    assert np.all(np.isnan(depth[0]))
    bottom = depth[-1, cam.width // 2]
    assert 1.0 < bottom < 10.0
    frames = scene.sensor_frames()
    assert set(frames) == {"front_camera_optical_frame", "lidar_link", "radar_link"}
    # The optical frame's z axis points forward and slightly down in base_link.
    q = frames["front_camera_optical_frame"]["xyz_quat"]
    assert q[:3] == pytest.approx([m.x, m.y, m.z])


# ------------------------------------------------------------------------------ episode status
def test_collision_is_reported_and_latched(scene):
    _empty(scene)
    ob = scene.add_obstacle(15.0, 0.0, size=(1.0, 1.0, 1.5))
    scene.apply_command(0.0, 1.0, 0.0)
    hit_at = None
    for i in range(400):
        scene.step()
        if scene.status().collision:
            hit_at = i
            break
    assert hit_at is not None
    st, veh = scene.status(), scene.vehicle_state()
    assert st.collided_with == ob and st.done and not st.route_complete
    # Contact: the front bumper reached the obstacle's near face (within a step of travel).
    bumper = veh.x + PARAMS.front_bumper_x_m
    assert bumper == pytest.approx(14.5, abs=scene.contact_margin_m + veh.speed_mps * scene.physics_dt_s)
    assert veh.speed_mps > 5.0
    # Latched: still reported after backing off is impossible, and after standing still.
    _run(scene, 0.0, 0.0, 1.0, 2.0)
    assert scene.status().collision


def test_no_collision_beside_an_obstacle(scene):
    _empty(scene)
    half_w = 0.5 * PARAMS.width_m
    scene.add_obstacle(8.0, half_w + 0.5 + 0.2, size=(1.0, 1.0, 1.5))  # 0.2 m clear of the side
    _run(scene, 0.0, 1.0, 0.0, 4.0)
    assert scene.vehicle_state().x > 12.0
    assert not scene.status().collision


def test_lane_departure_and_lateral_offset(scene):
    _empty(scene)
    half = 0.5 * scene.lane_width_m - 0.5 * PARAMS.width_m
    scene.set_vehicle_state(5.0, half - 0.05, 0.1)
    st = scene.status()
    assert st.lateral_offset_m == pytest.approx(half - 0.05)
    assert st.heading_error_rad == pytest.approx(0.1)
    assert not st.lane_departure
    scene.set_vehicle_state(5.0, -(half + 0.05), 0.0)
    st = scene.status()
    assert st.lane_departure and st.lateral_offset_m < 0.0
    scene.step()
    assert scene.status().lane_departure_steps == 1
    assert st.progress_m == pytest.approx(5.0)
    assert st.progress_fraction == pytest.approx(5.0 / scene.route.length_m)


# ------------------------------------------------------------------------------------- expert
def test_instructions():
    assert INSTRUCTION_KINDS == ("follow_lane", "drive_slowly", "stop_before_obstacle")
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(60):
        kind, text = sample_instruction(rng)
        assert text in PHRASINGS[kind] and instruction_kind(text.upper()) == kind
        seen.add(kind)
    assert seen == set(INSTRUCTION_KINDS)
    assert sample_instruction(rng, "drive_slowly")[0] == "drive_slowly"
    assert len(PHRASINGS["follow_lane"]) >= 3
    with pytest.raises(ValueError):
        sample_instruction(rng, "fly")
    assert instruction_kind("do a backflip") is None


def _drive(scene, expert, max_steps, until=None):
    progress, max_lat = [], 0.0
    for _ in range(max_steps):
        steering, throttle, brake = expert.command(scene)
        assert throttle == 0.0 or brake == 0.0
        scene.apply_command(steering, throttle, brake)
        scene.step()
        st = scene.status()
        progress.append(st.progress_m)
        max_lat = max(max_lat, abs(st.lateral_offset_m))
        if st.done or (until is not None and until()):
            break
    return scene.status(), progress, max_lat


@pytest.mark.parametrize("seed", [0, 5])
def test_expert_completes_an_obstacle_free_course(scene, seed):
    scene.reset(seed, n_static=0, n_moving=0)
    assert any(sg["kind"] == "arc" for sg in scene.description()["route"]["segments"])
    expert = VehicleExpert("follow_lane")
    st, progress, max_lat = _drive(scene, expert, 1500)
    assert st.progress_fraction > 0.95 and st.route_complete and st.done
    assert st.lane_departure_steps == 0 and not st.collision
    assert max_lat < 0.5
    assert all(b >= a for a, b in zip(progress, progress[1:]))
    # "follow the lane" cruises near 8 m/s on the straight lead-in, "drive slowly" near 4 m/s.
    scene.reset(seed, n_static=0, n_moving=0)
    slow = VehicleExpert("drive_slowly")
    _drive(scene, slow, 250)
    assert scene.vehicle_state().speed_mps == pytest.approx(4.0, abs=0.3)


def test_expert_stops_before_a_static_obstacle_in_the_lane(scene):
    scene.reset(2, n_static=1, n_moving=0, in_lane_fraction=1.0)
    target = scene.obstacle_states()[0]
    assert target.in_lane
    expert = VehicleExpert("stop_before_obstacle")
    st, _, _ = _drive(scene, expert, 1500, until=lambda: expert.holding)
    assert expert.holding and not st.collision and st.lane_departure_steps == 0
    _drive(scene, expert, 50)  # holds the stop
    veh, st = scene.vehicle_state(), scene.status()
    assert veh.speed_mps == 0.0 and not st.collision
    # Front bumper to the obstacle, along the road: about 5 m.
    from msvla_sim.vehicle_scene import half_along
    heading = scene.route.pose_at(target.route_s)[1]
    gap = target.route_s - half_along(target, heading) - (st.route_s_m + PARAMS.front_bumper_x_m)
    assert gap == pytest.approx(expert.params.stop_before_obstacle_gap_m, abs=0.6)


def test_expert_yields_to_a_crossing_pedestrian(scene):
    seed = next(s for s in range(50)
                if [o["kind"] for o in scene.reset(s, n_static=0, n_moving=1)["obstacles"]] == ["crossing"])
    scene.reset(seed, n_static=0, n_moving=1)
    expert = VehicleExpert("follow_lane")
    yielded = []
    st, _, _ = _drive(scene, expert, 2500,
                      until=lambda: yielded.append(expert.blocking_obstacle is not None) and False)
    assert st.route_complete and not st.collision
    assert any(yielded)  # it slowed for the pedestrian at some point
    assert scene.obstacle_states()[0].phase == "arrived"


def test_a_lead_car_leaves_the_course_at_its_end_instead_of_blocking_it(scene):
    """A lead car without a static obstacle to halt at drives off the end of the route; parked
    there it would keep every car behind it from completing the course."""
    desc = scene.reset(0, n_static=0, n_moving=2, in_lane_fraction=0.0)  # seed 0 places a lead car
    leads = [o for o in scene.obstacle_states() if o.kind == "lead"]
    assert leads, "seed 0 no longer places a lead car: pick a seed that does"
    lead = leads[0]
    length = desc["route"]["length_m"]
    for _ in range(int((length - lead.route_s) / lead.speed_mps / scene.physics_dt_s) + 200):
        scene.step()
    lead = next(o for o in scene.obstacle_states() if o.kind == "lead")  # states are snapshots
    assert lead.phase == "gone" and not lead.in_lane and np.allclose(lead.velocity, 0.0)
    end = scene.route.pose_at(length)[0]
    assert np.linalg.norm(lead.position[:2] - end) > 100.0
    assert scene.lidar_scan().shape[0] > 0  # the scene keeps working without it
