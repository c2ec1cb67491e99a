"""Graph data, the --ros-args built from it, and the runner failing loudly when a node dies."""
import time

import pytest

from msvla_bringup.graph import GraphSpec, load_graph, process_groups, ros_arguments, write_overrides
from msvla_bringup.node_container import ContainerArgumentError, node_class, parse_sections
from msvla_bringup.runner import GraphRunner, NodeProcessDied, executable_path
from msvla_core.config import ConfigError, from_dict, load_yaml


def test_franka_graph_names_installed_executables_and_existing_parameter_files():
    spec, base = load_graph("franka_rgbd")
    assert [n.name for n in spec.selected(simulation=False)] == [
        "rgb_encoder", "depth_encoder", "fusion_node", "vla_node", "safety_shield"]
    assert "franka_sim" in [n.name for n in spec.selected(simulation=True)]
    for node in spec.nodes:
        assert executable_path(node).is_file()
        for rel in node.parameters:
            assert (base / rel).is_file()


def test_ros_arguments_are_what_launch_would_pass(tmp_path):
    spec, base = load_graph("franka_rgbd")
    node = next(n for n in spec.nodes if n.name == "depth_encoder")
    assert ros_arguments(node, base) == [
        "--ros-args", "-r", "__node:=depth_encoder", "--params-file", str(base / "franka/model.yaml"),
        "--params-file", str(base / "franka/calibration.yaml")]
    overrides = write_overrides(node, {"num_threads": 2, "checkpoint": "/tmp/x'y"}, tmp_path)
    assert ros_arguments(node, base, overrides)[-2:] == ["--params-file", str(overrides)]
    assert load_yaml(overrides) == {"depth_encoder": {"ros__parameters": {"num_threads": 2, "checkpoint": "/tmp/x'y"}}}


def test_graph_spec_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"nodes\[0\].paramters"):
        from_dict(GraphSpec, {"name": "g", "description": "", "nodes": [
            {"name": "a", "package": "p", "executable": "e", "paramters": []}]}, where="graph.yaml")
    with pytest.raises(ConfigError, match="duplicate node names"):
        from_dict(GraphSpec, {"name": "g", "description": "", "nodes": [
            {"name": "a", "package": "p", "executable": "e"}, {"name": "a", "package": "p", "executable": "e"}]})


def test_nodes_with_bad_configuration_refuse_to_start_and_the_runner_says_why(tmp_path):
    spec, base = load_graph("franka_rgbd")
    keep = {"rgb_encoder", "fusion_node"}
    runner = GraphRunner(spec, base, tmp_path, simulation=False,
                         exclude=tuple(n.name for n in spec.nodes if n.name not in keep),
                         overrides={"rgb_encoder": {"checkpoint": str(tmp_path / "no_such_checkpoint")},
                                    "fusion_node": {"slop_s": 5.0}})
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(r.process.poll() is None for r in runner.running):
            time.sleep(0.2)
        with pytest.raises(NodeProcessDied, match="exited with code 1") as died:
            runner.check()
        assert "no_such_checkpoint/config.json not found" in (tmp_path / "rgb_encoder.log").read_text()
        assert "slop_s" in (tmp_path / "fusion_node.log").read_text()
        assert "last log lines" in str(died.value)
    finally:
        runner.stop()


def test_restart_replaces_one_node_process_and_appends_to_its_log(tmp_path):
    spec, base = load_graph("franka_rgbd")
    runner = GraphRunner(spec, base, tmp_path, simulation=False,
                         exclude=tuple(n.name for n in spec.nodes if n.name != "fusion_node"),
                         overrides={"fusion_node": {"slop_s": 5.0}})  # refuses to start: quick to run
    runner.start()
    try:
        first = runner.running[0].process
        first.wait(timeout=60)
        runner.restart("fusion_node")
        second = runner.running[0].process
        assert second.pid != first.pid and len(runner.running) == 1
        second.wait(timeout=60)
        assert (tmp_path / "fusion_node.log").read_text().count("slop_s") >= 2
        with pytest.raises(KeyError, match="depth_encoder"):
            runner.restart("depth_encoder")
    finally:
        runner.stop()


def test_composed_nodes_share_one_container_process_with_their_own_arguments(tmp_path):
    spec, base = load_graph("vehicle_multisensor")
    groups = process_groups(spec.selected(simulation=True))
    assert [[n.name for n in g] for g in groups] == [
        ["vehicle_sim"], ["rgb_encoder", "lidar_encoder", "radar_encoder", "imu_encoder", "proprio_encoder",
                          "fusion_node", "vla_node"], ["safety_shield"]]
    runner = GraphRunner(spec, base, tmp_path, simulation=True, overrides={"fusion_node": {"slop_s": 0.05}})
    commands = runner.commands()
    assert list(commands) == ["vehicle_sim", "vehicle_model", "safety_shield"]
    container = commands["vehicle_model"]
    assert container[0].endswith("/node_container")
    sections = parse_sections(container[1:])
    assert [(p, e) for p, e, _ in sections] == [(n.package, n.executable) for n in groups[1]]
    fusion = next(n for n in groups[1] if n.name == "fusion_node")
    assert sections[5][2] == ros_arguments(fusion, base, tmp_path / "fusion_node.overrides.yaml")
    # every node as a process of its own, as before composition
    separate = GraphRunner(spec, base, tmp_path, simulation=True, composed=False)
    assert list(separate.commands()) == [n.name for n in spec.nodes]


def test_container_refuses_what_it_cannot_start():
    with pytest.raises(ContainerArgumentError, match="expected --node"):
        parse_sections(["--ros-args"])
    with pytest.raises(ContainerArgumentError, match="expected <package>/<executable>"):
        parse_sections(["--node", "rgb_encoder"])
    with pytest.raises(ContainerArgumentError, match="at the end names no node"):
        parse_sections(["--node", "msvla_fusion/fusion_node", "--node"])
    with pytest.raises(ContainerArgumentError, match="package msvla_fusion has no executable rgb_encoder"):
        node_class("msvla_fusion", "rgb_encoder")
    assert node_class("msvla_encoders", "imu_encoder").__name__ == "ImuEncoderNode"
    assert node_class("msvla_safety", "vehicle_shield").__name__ == "VehicleShieldNode"


def test_a_container_with_a_bad_node_exits_non_zero_naming_it(tmp_path):
    spec, base = load_graph("vehicle_multisensor")
    runner = GraphRunner(spec, base, tmp_path, simulation=False,
                         exclude=("rgb_encoder", "lidar_encoder", "radar_encoder", "imu_encoder", "vla_node"),
                         overrides={"fusion_node": {"slop_s": 5.0}})  # refuses to start: quick to run
    runner.start()
    try:
        process = runner.process_of("fusion_node")
        assert process.specs == [n for n in spec.nodes if n.name in ("proprio_encoder", "fusion_node")]
        assert process.process.wait(timeout=60) != 0
        with pytest.raises(NodeProcessDied, match=r"process vehicle_model \(node_container of proprio_encoder, "
                                                  r"fusion_node\) exited"):
            runner.check()
        assert "cannot start node fusion_node (msvla_fusion/fusion_node): " in (tmp_path / "vehicle_model.log").read_text()
    finally:
        runner.stop()


def test_the_shield_never_shares_a_process():
    data = load_yaml(load_graph("vehicle_multisensor")[1] / "graphs/vehicle_multisensor.yaml")
    shield = next(n for n in data["nodes"] if n["name"] == "safety_shield")
    shield["process"] = "vehicle_model"
    with pytest.raises(ConfigError, match="safety_shield commands the robot and cannot share process 'vehicle_model'"):
        from_dict(GraphSpec, data, where="graph")


def test_a_container_names_its_last_node_when_that_one_refuses_to_configure(tmp_path):
    spec, base = load_graph("vehicle_multisensor")
    runner = GraphRunner(spec, base, tmp_path, simulation=False,
                         exclude=("rgb_encoder", "lidar_encoder", "radar_encoder", "imu_encoder", "fusion_node"),
                         overrides={"vla_node": {"checkpoint": str(tmp_path / "no_such_checkpoint")}})
    runner.start()
    try:
        assert runner.process_of("vla_node").process.wait(timeout=60) != 0
        log = (tmp_path / "vehicle_model.log").read_text()
        assert "cannot start node vla_node (msvla_vla/vla_node): " in log and "no_such_checkpoint" in log, log
        assert "Traceback" not in log
    finally:
        runner.stop()
