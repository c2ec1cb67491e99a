"""The vehicle shield's obstacle logic fed the simulator's own LiDAR, radar and odometry (real
PyBullet geometry, no ROS): the case a corridor design must not miss."""

import math
import os
import sys
from pathlib import Path

import numpy as np

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)

from msvla_core.config import load_yaml  # noqa: E402
from msvla_core.safety.obstacles import lidar_points_in_base  # noqa: E402
from msvla_core.safety.params import check_params_files  # noqa: E402
from msvla_core.safety.vehicle_shield import VehicleProposal, VehicleShield  # noqa: E402
from msvla_sim.vehicle_expert import VehicleExpert  # noqa: E402
from msvla_sim.vehicle_scene import VehicleScene  # noqa: E402

SHIELD_CONFIG = Path(__file__).resolve().parents[3] / "config" / "safety" / "vehicle.yaml"
STEP_S = 0.05
NS = 10**9


def test_a_pedestrian_crossing_into_a_bend_from_its_outside_is_braked_for_in_time():
    """Seed 930002: a pedestrian waits 3.75 m left of a right-hand bend (radius 43 m) and starts
    across as the car comes within 21 m. Driven through the bend at 8 m/s by the expert's steering,
    ignoring the shield, the car would hit it; the shield must call for braking while the
    pedestrian is still at least 10 m from the bumper (8 m/s needs ~5.3 m to stop at 6 m/s^2, plus
    the latency of the graph). The corridor as built (the straight box and the steered arc) brakes
    15.3 m from it; one along the steered and yaw-rate arcs alone, with crossings read across the
    car's heading, braked 5.2 m from it, and the closed loop hit the pedestrian."""
    _, limits, _ = check_params_files([SHIELD_CONFIG])
    params = load_yaml(SHIELD_CONFIG)["safety_shield"]["ros__parameters"]
    shield = VehicleShield(limits, None, STEP_S)
    scene = VehicleScene()
    try:
        scene.reset(930002, in_lane_fraction=0.0)
        pedestrian = next(o for o in scene.obstacle_states() if o.kind == "crossing")
        expert = VehicleExpert("follow_lane")
        expert.reset()
        braked_at = None
        now = NS
        for _ in range(int(20.0 / STEP_S)):
            steering = expert.steering(scene)
            speed = scene.odometry().speed_mps
            scene.apply_command(steering, min(max(0.5 * (8.0 - speed), 0.0), 1.0), 0.0)
            scene.step(STEP_S)
            now += int(STEP_S * NS)
            odom = scene.odometry()
            shield.on_speed(odom.speed_mps, now, odom.yaw_rate_radps)
            radar = scene.radar_targets()
            shield.on_radar(radar[:, 0], radar[:, 1], radar[:, 2], now, params["radar_to_base"])
            shield.on_obstacles("lidar", lidar_points_in_base(scene.lidar_scan()[:, :3], params["lidar_to_base"]),
                                now)
            shield.check(VehicleProposal(now, "base_link", steering, 0.3, 0.0), now, now)
            out = shield.tick(now, now)
            ped = next(o for o in scene.obstacle_states() if o.id == pedestrian.id)
            heading = np.array([math.cos(odom.yaw), math.sin(odom.yaw)])
            bumper = np.array([odom.x, odom.y]) + limits.front_offset_m * heading
            distance = float(np.linalg.norm(ped.position[:2] - bumper)) - ped.footprint_radius
            if any(code == "collision_imminent" for code, _ in out.interventions):
                braked_at = distance
                break
            assert scene.status().collision is False, "the car reached the pedestrian without the shield braking"
    finally:
        scene.close()
    assert braked_at is not None, "the shield never braked for the crossing pedestrian"
    assert braked_at >= 10.0, f"the shield braked only {braked_at:.1f} m from the pedestrian"
