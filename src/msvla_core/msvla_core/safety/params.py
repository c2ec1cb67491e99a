"""Shield parameters (names, ranges, descriptions) and their conversion into validated limits.

The shield nodes declare these; `check_params_file` applies the same validation to a
config/safety/*.yaml without ROS, so a wrong limit is caught before anything starts.
"""
from __future__ import annotations

import math
from pathlib import Path

import yaml

from ..params import ParamSpec
from .checks import ProposalLimits
from .grasp_shield import GraspLimits
from .supervisor import WatchdogLimits
from .vehicle_shield import ODOMETRY_INPUT, VehicleLimits, obstacle_input

def required_modalities(default: list[str]) -> ParamSpec:
    return ParamSpec("required_modalities", default, "Sensors that must appear in /msvla/fused; each one "
                     "silent for longer than sensor_timeout moves the shield to its safe state.")


WATCHDOG_PARAMS = [
    ParamSpec("actuation_enabled", False, "Publish to the robot's command topic. False is a dry run: the "
              "shield checks, reports and logs, but commands nothing. Simulation graphs enable it; on a "
              "robot set it (at run time too) or call /msvla/safety/enable_actuation.", read_only=False),
    ParamSpec("control_rate", 50.0, "Watchdog / control period of the shield (vehicle: command rate).",
              unit="Hz", min=1.0, max=1000.0),
    ParamSpec("status_rate", 10.0, "Rate of /msvla/safety/status when nothing changes.", unit="Hz",
              min=0.1, max=100.0),
    ParamSpec("sensor_timeout", 0.5, "Heartbeat timeout of each required sensor (via /msvla/fused).",
              unit="s", min=0.01, max=60.0),
    ParamSpec("vla_timeout", 0.5, "Heartbeat timeout of the VLA node (/msvla/vla/heartbeat).", unit="s",
              min=0.01, max=60.0),
    ParamSpec("max_proposal_rate", 100.0, "Proposal rate above which the source is treated as faulty "
              "(averaged over flood_window).", unit="Hz", min=1.0, max=100000.0),
    ParamSpec("flood_window", 0.5, "Window over which the proposal rate is measured.", unit="s",
              min=0.01, max=10.0),
    ParamSpec("max_clock_jump", 0.5, "Largest step the ROS clock may take ahead of steady time per "
              "control period before it counts as a jump.", unit="s", min=0.001, max=60.0),
    ParamSpec("expected_model_id", "", "Proposals and heartbeats from any other checkpoint are a fault; "
              "empty accepts any."),
]

PROPOSAL_PARAMS = [
    ParamSpec("max_age", 0.5, "Proposals whose sensor stamp is older than this are rejected as stale.",
              unit="s", min=0.001, max=10.0),
    ParamSpec("future_tolerance", 0.05, "Proposals stamped further ahead of this node's clock are "
              "rejected.", unit="s", min=0.0, max=1.0),
]

GRASP_PARAMS = [
    ParamSpec("mode", "grasp", "Kind of shield this parameter set is for.", choices=("grasp",)),
    required_modalities(["rgb", "depth"]),
    ParamSpec("base_frame", "panda_link0", "Required frame_id of proposals (the robot base)."),
    ParamSpec("workspace_min", [0.25, -0.35, 0.0], "Lower corner (x, y, z) of the allowed grasp box in "
              "the base frame.", unit="m"),
    ParamSpec("workspace_max", [0.80, 0.35, 0.45], "Upper corner (x, y, z) of the allowed grasp box in "
              "the base frame.", unit="m"),
    ParamSpec("table_z", 0.0, "Height of the table surface in the base frame.", unit="m", min=-2.0, max=2.0),
    ParamSpec("table_clearance", 0.005, "The grasp point must be at least this far above the table.",
              unit="m", min=0.0, max=0.5),
    ParamSpec("approach_direction", [0.0, 0.0, -1.0], "Preferred approach direction (+z of the grasp "
              "frame) in the base frame."),
    ParamSpec("approach_cone", 45.0, "Largest angle between a grasp's approach and approach_direction.",
              unit="deg", min=0.1, max=180.0),
    ParamSpec("min_width", 0.0, "Smallest allowed gripper opening.", unit="m", min=0.0, max=0.2),
    ParamSpec("max_width", 0.08, "Largest allowed gripper opening.", unit="m", min=0.0, max=0.2),
    ParamSpec("min_score", 0.0, "Proposals with a lower model score are rejected.", min=0.0, max=1.0),
    ParamSpec("max_jump", 0.15, "Largest distance between consecutive accepted targets of one "
              "instruction.", unit="m", min=0.001, max=5.0),
    ParamSpec("jump_memory", 2.0, "An accepted target older than this no longer limits the next one.",
              unit="s", min=0.01, max=600.0),
    ParamSpec("max_update_rate", 20.0, "Accepted grasp targets per second, at most.", unit="Hz",
              min=0.01, max=1000.0),
    ParamSpec("keepout_boxes", [], "Boxes no grasp may be inside, six values each "
              "(xmin, ymin, zmin, xmax, ymax, zmax) in the base frame.", unit="m"),
] + PROPOSAL_PARAMS


_VEHICLE_DEFAULTS = VehicleLimits()

VEHICLE_PARAMS = [
    ParamSpec("mode", "vehicle", "Kind of shield this parameter set is for.", choices=("vehicle",)),
    required_modalities(["camera", "lidar"]),
    ParamSpec("base_frame", "base_link", "Required frame_id of proposals, and the frame obstacles are "
              "judged in (REP-103: x forward, y left)."),
    ParamSpec("speed_points", list(_VEHICLE_DEFAULTS.speed_points_mps), "Speeds at which the scheduled "
              "limits below are given (linear in between, constant beyond).", unit="m/s"),
    ParamSpec("max_steering", list(_VEHICLE_DEFAULTS.max_steering_rad), "Largest |steering| at each "
              "speed point.", unit="rad"),
    ParamSpec("max_steering_rate", list(_VEHICLE_DEFAULTS.max_steering_rate_radps), "Largest steering "
              "rate at each speed point.", unit="rad/s"),
    ParamSpec("max_accel", list(_VEHICLE_DEFAULTS.max_accel_mps2), "Largest |acceleration| the model "
              "may command at each speed point.", unit="m/s^2"),
    ParamSpec("max_jerk", list(_VEHICLE_DEFAULTS.max_jerk_mps3), "Largest jerk the model may command at "
              "each speed point.", unit="m/s^3"),
    ParamSpec("throttle_accel", _VEHICLE_DEFAULTS.throttle_accel_mps2, "Acceleration at full throttle "
              "(pedal model).", unit="m/s^2", min=0.01, max=50.0),
    ParamSpec("brake_decel", _VEHICLE_DEFAULTS.brake_decel_mps2, "Deceleration at full brake (pedal "
              "model).", unit="m/s^2", min=0.01, max=50.0),
    ParamSpec("max_speed", _VEHICLE_DEFAULTS.max_speed_mps, "No throttle at or above this speed.",
              unit="m/s", min=0.1, max=100.0),
    ParamSpec("corridor_half_width", _VEHICLE_DEFAULTS.corridor_half_width_m, "Half width of the "
              "driving corridor checked for obstacles.", unit="m", min=0.1, max=10.0),
    ParamSpec("front_offset", _VEHICLE_DEFAULTS.front_offset_m, "base_link to the front bumper.",
              unit="m", min=0.0, max=20.0),
    ParamSpec("wheelbase", _VEHICLE_DEFAULTS.wheelbase_m, "Front to rear axle; the corridor follows the "
              "arc of the commanded steering angle (and the arc of yaw rate / speed).", unit="m", min=0.1, max=20.0),
    ParamSpec("lookahead", _VEHICLE_DEFAULTS.lookahead_m, "Corridor length beyond the bumper.", unit="m",
              min=1.0, max=300.0),
    ParamSpec("corridor_z_min", _VEHICLE_DEFAULTS.corridor_z_min_m, "Points below this height are ground.",
              unit="m", min=-5.0, max=5.0),
    ParamSpec("corridor_z_max", _VEHICLE_DEFAULTS.corridor_z_max_m, "Points above this height are "
              "overhead structure.", unit="m", min=-5.0, max=10.0),
    ParamSpec("ttc_brake", _VEHICLE_DEFAULTS.ttc_brake_s, "Brake when the time to collision falls below.",
              unit="s", min=0.1, max=20.0),
    ParamSpec("ttc_release", _VEHICLE_DEFAULTS.ttc_release_s, "Collision braking ends above this time to "
              "collision (hysteresis).", unit="s", min=0.1, max=30.0),
    ParamSpec("min_gap", _VEHICLE_DEFAULTS.min_gap_m, "Brake when anything in the corridor is closer "
              "while moving.", unit="m", min=0.0, max=50.0),
    ParamSpec("max_crossing_speed", _VEHICLE_DEFAULTS.max_crossing_speed_mps, "Fastest road user assumed to "
              "cross the path: a radar target whose own radial velocity only a faster crossing explains is "
              "taken as longitudinal traffic.", unit="m/s", min=0.1, max=20.0),
    ParamSpec("crossing_min_speed", _VEHICLE_DEFAULTS.crossing_min_speed_mps, "Radar targets crossing "
              "slower than this count as static.", unit="m/s", min=0.0, max=10.0),
    ParamSpec("radar_velocity_noise", _VEHICLE_DEFAULTS.radar_velocity_noise_mps, "Radar radial velocity "
              "noise (1 sigma); an own radial velocity within 3 sigmas of 0 is static.", unit="m/s",
              min=0.001, max=5.0),
    ParamSpec("emergency_decel", _VEHICLE_DEFAULTS.emergency_decel_mps2, "Deceleration of the shield's "
              "braking profile.", unit="m/s^2", min=0.1, max=50.0),
    ParamSpec("emergency_jerk", _VEHICLE_DEFAULTS.emergency_jerk_mps3, "Jerk of the braking profile.",
              unit="m/s^3", min=0.1, max=500.0),
    ParamSpec("stop_speed", _VEHICLE_DEFAULTS.stop_speed_mps, "|speed| below which the vehicle counts as "
              "stopped.", unit="m/s", min=0.001, max=5.0),
    ParamSpec("hold_brake", _VEHICLE_DEFAULTS.hold_brake, "Least brake once stopped by the shield.",
              min=0.0, max=1.0),
    ParamSpec("obstacle_sources", ["lidar", "radar"], "Obstacle sensors the shield reads and watches "
              "(lidar: /lidar/points x, y, z; radar: /radar/targets range, azimuth, radial_velocity)."),
    ParamSpec("lidar_to_base", [0.0, 0.0, 1.8, 0.0, 0.0, 0.0, 1.0], "Pose of the LiDAR frame in "
              "base_frame: x, y, z (m), qx, qy, qz, qw."),
    ParamSpec("radar_to_base", [3.6, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0], "Pose of the radar frame in "
              "base_frame: x, y, z (m), qx, qy, qz, qw."),
    ParamSpec("odometry_timeout", 0.2, "Heartbeat timeout of the odometry (speed) input.", unit="s",
              min=0.01, max=10.0),
    ParamSpec("obstacle_timeout", 0.3, "Heartbeat timeout of each obstacle sensor.", unit="s",
              min=0.01, max=10.0),
] + PROPOSAL_PARAMS


def proposal_limits(values: dict) -> ProposalLimits:
    return ProposalLimits(frame_id=values["base_frame"], max_age_s=values["max_age"],
                          future_tolerance_s=values["future_tolerance"],
                          expected_model_id=values["expected_model_id"])


def watchdog_limits(values: dict, extra_inputs: dict[str, float] | None = None) -> WatchdogLimits:
    """Heartbeat inputs: the VLA node, each required sensor, and whatever else the mode watches."""
    timeouts = {"vla": values["vla_timeout"]}
    timeouts.update({f"sensor/{m}": values["sensor_timeout"] for m in values["required_modalities"]})
    timeouts.update(extra_inputs or {})
    return WatchdogLimits(heartbeat_timeouts_s=timeouts, expected_model_id=values["expected_model_id"],
                          max_proposal_rate_hz=values["max_proposal_rate"],
                          flood_window_s=values["flood_window"], max_clock_jump_s=values["max_clock_jump"])


def grasp_limits(values: dict) -> GraspLimits:
    flat = values["keepout_boxes"]
    if len(flat) % 6:
        raise ValueError(f"keepout_boxes has {len(flat)} values; it needs six per box "
                         "(xmin, ymin, zmin, xmax, ymax, zmax)")
    boxes = [(tuple(flat[i:i + 3]), tuple(flat[i + 3:i + 6])) for i in range(0, len(flat), 6)]
    return GraspLimits(workspace_min=tuple(values["workspace_min"]), workspace_max=tuple(values["workspace_max"]),
                       table_z=values["table_z"], table_clearance_m=values["table_clearance"],
                       approach_direction=tuple(values["approach_direction"]),
                       approach_cone_deg=values["approach_cone"], min_width_m=values["min_width"],
                       max_width_m=values["max_width"], min_score=values["min_score"],
                       max_jump_m=values["max_jump"], jump_memory_s=values["jump_memory"],
                       max_update_rate_hz=values["max_update_rate"], keepout_boxes=boxes,
                       proposal=proposal_limits(values))


def vehicle_limits(values: dict) -> VehicleLimits:
    return VehicleLimits(
        speed_points_mps=tuple(values["speed_points"]), max_steering_rad=tuple(values["max_steering"]),
        max_steering_rate_radps=tuple(values["max_steering_rate"]), max_accel_mps2=tuple(values["max_accel"]),
        max_jerk_mps3=tuple(values["max_jerk"]), throttle_accel_mps2=values["throttle_accel"],
        brake_decel_mps2=values["brake_decel"], max_speed_mps=values["max_speed"],
        corridor_half_width_m=values["corridor_half_width"], front_offset_m=values["front_offset"],
        wheelbase_m=values["wheelbase"], lookahead_m=values["lookahead"], corridor_z_min_m=values["corridor_z_min"],
        corridor_z_max_m=values["corridor_z_max"], ttc_brake_s=values["ttc_brake"],
        ttc_release_s=values["ttc_release"], min_gap_m=values["min_gap"],
        max_crossing_speed_mps=values["max_crossing_speed"], crossing_min_speed_mps=values["crossing_min_speed"],
        radar_velocity_noise_mps=values["radar_velocity_noise"],
        emergency_decel_mps2=values["emergency_decel"], emergency_jerk_mps3=values["emergency_jerk"],
        stop_speed_mps=values["stop_speed"], hold_brake=values["hold_brake"], proposal=proposal_limits(values))


OBSTACLE_SOURCES = ("lidar", "radar")


def vehicle_inputs(values: dict) -> dict[str, float]:
    """Heartbeat inputs the vehicle shield watches besides the VLA and the fused sensors."""
    unknown = sorted(set(values["obstacle_sources"]) - set(OBSTACLE_SOURCES))
    if unknown:
        raise ValueError(f"obstacle_sources has {unknown}; known sources: {list(OBSTACLE_SOURCES)}")
    inputs = {ODOMETRY_INPUT: values["odometry_timeout"]}
    inputs.update({obstacle_input(s): values["obstacle_timeout"] for s in values["obstacle_sources"]})
    return inputs


def pose_param(values: dict, name: str) -> tuple[float, ...]:
    pose = values[name]
    if len(pose) != 7 or not all(math.isfinite(v) for v in pose):
        raise ValueError(f"{name}={pose} needs seven finite values: x, y, z, qx, qy, qz, qw")
    if abs(math.sqrt(sum(v * v for v in pose[3:])) - 1.0) > 1e-3:
        raise ValueError(f"{name}: quaternion {pose[3:]} is not unit length")
    return tuple(pose)


def vehicle_setup(values: dict):
    for name in ("lidar_to_base", "radar_to_base"):
        pose_param(values, name)
    return vehicle_limits(values), watchdog_limits(values, vehicle_inputs(values))


def grasp_setup(values: dict):
    return grasp_limits(values), watchdog_limits(values)


# mode -> (parameters, values -> (limits, watchdog limits))
MODES = {"grasp": (GRASP_PARAMS, grasp_setup), "vehicle": (VEHICLE_PARAMS, vehicle_setup)}


def validated_values(specs: list[ParamSpec], given: dict) -> dict:
    """Defaults overridden by `given`, each checked against its spec; unknown names are an error."""
    known = {s.name for s in specs}
    unknown = sorted(set(given) - known - {"use_sim_time"})
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; known: {sorted(known)}")
    return {s.name: s.validate(given.get(s.name, s.default)) for s in specs}


def check_params_files(paths, node_name: str = "safety_shield"):
    """(mode, limits, watchdog) from shield parameter files (later files override earlier ones, as
    when a node is given several), or ValueError naming the file set and what is wrong."""
    given: dict = {}
    for path in paths:
        data = yaml.safe_load(Path(path).read_text()) or {}
        try:
            given.update(data[node_name]["ros__parameters"])
        except (KeyError, TypeError):
            raise ValueError(f"{path}: no {node_name}: ros__parameters: section") from None
    where = " + ".join(str(p) for p in paths)
    mode = given.get("mode")
    if mode not in MODES:
        raise ValueError(f"{where}: parameter mode={mode!r} must be one of {sorted(MODES)}")
    specs, build = MODES[mode]
    try:
        values = validated_values(specs + WATCHDOG_PARAMS, given)
        return (mode, *build(values))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
