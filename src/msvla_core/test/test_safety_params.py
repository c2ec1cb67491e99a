"""Shield parameter files are validated without ROS: the shipped ones pass, a wrong one names what is wrong."""
from pathlib import Path

import pytest
import yaml

from msvla_core.safety import GraspLimits, VehicleLimits
from msvla_core.safety.params import check_params_files

CONFIG = Path(__file__).resolve().parents[3] / "config" / "safety"


def test_the_shipped_shield_configs_are_valid():
    mode, limits, watchdog = check_params_files([CONFIG / "franka_grasp.yaml"])
    assert mode == "grasp" and isinstance(limits, GraspLimits)
    assert set(watchdog.heartbeat_timeouts_s) == {"vla", "sensor/rgb", "sensor/depth"}
    _, _, rgb_only = check_params_files([CONFIG / "franka_grasp.yaml", CONFIG / "franka_grasp_rgb.yaml"])
    assert set(rgb_only.heartbeat_timeouts_s) == {"vla", "sensor/rgb"}
    mode, limits, watchdog = check_params_files([CONFIG / "vehicle.yaml"])
    assert mode == "vehicle" and isinstance(limits, VehicleLimits)
    assert {"odometry", "obstacles/lidar", "obstacles/radar", "sensor/camera", "sensor/lidar"} <= set(watchdog.heartbeat_timeouts_s)


def write(tmp_path, base: str, **changes):
    data = yaml.safe_load((CONFIG / base).read_text())
    params = data["safety_shield"]["ros__parameters"]
    for name, value in changes.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    path = tmp_path / "shield.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("base, changes, message", [
    ("franka_grasp.yaml", {"workspace_mni": [0, 0, 0]}, "unknown parameter(s) ['workspace_mni']"),
    ("franka_grasp.yaml", {"mode": None}, "parameter mode=None must be one of"),
    ("franka_grasp.yaml", {"approach_cone": 200.0}, "approach_cone=200.0 is above its maximum"),
    ("franka_grasp.yaml", {"keepout_boxes": [0.1, 0.2, 0.3]}, "keepout_boxes has 3 values"),
    ("franka_grasp.yaml", {"workspace_min": [0.9, -0.35, 0.0]}, "workspace_min.x=0.9 must be finite and below"),
    ("vehicle.yaml", {"max_steering": [0.5, 0.4]}, "max_steering_rad=[0.5, 0.4] needs 5 values"),
    ("vehicle.yaml", {"speed_points": [0.0, 5.0, 5.0, 20.0, 30.0]}, "strictly increasing"),
    ("vehicle.yaml", {"ttc_release": 1.0}, "ttc_release_s=1.0 must be finite and above ttc_brake_s=2.0"),
    ("vehicle.yaml", {"obstacle_sources": ["lidar", "sonar"]}, "obstacle_sources has ['sonar']"),
    ("vehicle.yaml", {"lidar_to_base": [0.0, 0.0, 1.8, 0.0, 0.0, 0.0, 2.0]}, "lidar_to_base: quaternion"),
    ("vehicle.yaml", {"emergency_decel": 9.0}, "exceeds what full brake gives"),
])
def test_a_wrong_config_is_refused_naming_the_parameter(tmp_path, base, changes, message):
    with pytest.raises(ValueError) as error:
        check_params_files([write(tmp_path, base, **changes)])
    assert message in str(error.value) and "shield.yaml" in str(error.value)
