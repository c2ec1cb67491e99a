"""What the launch files start, decided without launch: the graph, the simulator, and whether the
shield may command the robot (a dry run on a robot unless asked for)."""
import ast
from pathlib import Path

import pytest

from msvla_bringup.graph import actuation_overrides, load_graph, merge_overrides
from msvla_bringup.launch_actions import launch_choices
from msvla_bringup.runner import GraphRunner

ROOT = Path(__file__).resolve().parents[3]
FRANKA = {"rgbd": "franka_rgbd", "rgb": "franka_rgb"}


@pytest.mark.parametrize("simulation, actuation, expected", [
    ("false", "auto", False), ("true", "auto", True), ("false", "true", True), ("true", "false", False),
    ("False", "TRUE", True), ("1", "auto", True)])
def test_actuation_follows_simulation_unless_set(simulation, actuation, expected):
    choices = launch_choices(FRANKA, "rgbd", simulation, actuation)
    assert choices.graph == "franka_rgbd" and choices.actuation is expected


@pytest.mark.parametrize("args, message", [
    (("depth", "false", "auto"), "variant:='depth' must be one of"),
    (("rgbd", "maybe", "auto"), "simulation:='maybe' must be true or false"),
    (("rgbd", "false", "sometimes"), "actuation_enabled:='sometimes' must be true or false")])
def test_bad_launch_arguments_name_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        launch_choices(FRANKA, *args)


@pytest.mark.parametrize("graph", ["franka_rgbd", "franka_rgb", "vehicle_multisensor"])
def test_every_graph_has_exactly_its_shield_as_actuator(graph):
    spec, _ = load_graph(graph)
    assert actuation_overrides(spec, True) == {"safety_shield": {"actuation_enabled": True}}
    assert actuation_overrides(spec, False) == {"safety_shield": {"actuation_enabled": False}}


def test_runner_commands_the_simulator_and_runs_dry_on_a_robot(tmp_path):
    spec, base = load_graph("franka_rgbd")
    sim = GraphRunner(spec, base, tmp_path, simulation=True, overrides={"franka_sim": {"seed": 3}})
    assert sim.overrides == {"safety_shield": {"actuation_enabled": True}, "franka_sim": {"seed": 3}}
    robot = GraphRunner(spec, base, tmp_path, simulation=False)
    assert robot.overrides["safety_shield"] == {"actuation_enabled": False}
    forced = GraphRunner(spec, base, tmp_path, simulation=False, actuation=True,
                         overrides={"safety_shield": {"min_score": 0.2}})
    assert forced.overrides["safety_shield"] == {"actuation_enabled": True, "min_score": 0.2}
    forced.commands()  # writes the per-node override files the processes start with
    assert "actuation_enabled: true" in (tmp_path / "safety_shield.overrides.yaml").read_text()


def test_later_override_layers_win_per_parameter():
    merged = merge_overrides({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}, "b": {"z": 4}})
    assert merged == {"a": {"x": 1, "y": 3}, "b": {"z": 4}}


@pytest.mark.parametrize("launch_file", sorted((ROOT / "launch").glob("*.launch.py")), ids=lambda p: p.name)
def test_launch_files_only_name_existing_graphs(launch_file):
    """Launch files cannot run here (no launch_ros in the PyPI wheels): check the graphs they name."""
    tree = ast.parse(launch_file.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") ==
             "graph_launch_description"]
    assert len(calls) == 1, "a launch file makes one graph_launch_description call"
    graphs = ast.literal_eval(calls[0].args[0])
    default_variant = ast.literal_eval(calls[0].args[1])
    assert default_variant in graphs
    for name in graphs.values():
        assert (ROOT / "config" / "graphs" / f"{name}.yaml").is_file(), name
