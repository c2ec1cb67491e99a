"""Shield parameters (names, ranges, descriptions) and their conversion into validated limits.

The shield nodes declare these; `check_params_file` applies the same validation to a
config/safety/*.yaml without ROS, so a wrong limit is caught before anything starts.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from ..params import ParamSpec
from .checks import ProposalLimits
from .grasp_shield import GraspLimits
from .supervisor import WatchdogLimits

WATCHDOG_PARAMS = [
    ParamSpec("control_rate", 50.0, "Watchdog / control period of the shield (vehicle: command rate).",
              unit="Hz", min=1.0, max=1000.0),
    ParamSpec("status_rate", 10.0, "Rate of /msvla/safety/status when nothing changes.", unit="Hz",
              min=0.1, max=100.0),
    ParamSpec("required_modalities", ["rgb", "depth"],
              "Sensors that must appear in /msvla/fused; each one silent for longer than sensor_timeout "
              "moves the shield to its safe state."),
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


MODES = {"grasp": (GRASP_PARAMS, grasp_limits)}


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
        return mode, build(values), watchdog_limits(values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
