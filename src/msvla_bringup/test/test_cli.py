"""`msvla`: doctor checks (shipped checkpoints, a damaged copy, the DDS profile, the ROS graph),
help of every subcommand and argument pass-through to the wrapped commands."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from msvla_bringup import cli, doctor

REPO = Path(__file__).resolve().parents[3]
FAST = ["--graph-seconds", "0"]


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines_of(out: str, name: str) -> list[str]:
    return [line for line in out.splitlines() if line[:5].strip() in ("OK", "WARN", "FAIL") and f" {name}" in line]


# ------------------------------------------------------------------------------- doctor

def test_doctor_passes_on_this_machine_and_the_shipped_ids_match(capsys):
    code, out, _ = run(capsys, "doctor", *FAST)
    assert code == 0, out
    assert not [line for line in out.splitlines() if line.startswith("FAIL")], out
    for name in doctor.SHIPPED_CHECKPOINTS:
        model_id = json.loads((REPO / "models" / name / "config.json").read_text())["model_id"]
        [line] = lines_of(out, f"checkpoint {name}:")
        assert line.startswith("OK") and f"model id {model_id} matches" in line
    for name in ("rclpy", "ROS_DISTRO", "Fast DDS profile", "HF_HUB_OFFLINE", "language model", "compute"):
        assert len(lines_of(out, f"{name}:")) == 1, (name, out)
    assert "rmw_" in lines_of(out, "rclpy:")[0]
    assert "ROS graph" not in out  # --graph-seconds 0 disables it


def _damage(checkpoint: Path, how: str) -> str:
    path = checkpoint / "policy.safetensors"
    data = bytearray(path.read_bytes())
    if how == "removed":
        path.unlink()
    elif how == "header":
        data[20] ^= 0xFF  # inside the JSON header that follows the 8-byte length
        path.write_bytes(bytes(data))
    else:
        data[-16] ^= 0xFF  # tensor data: only the recomputed id can tell
        path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("how", ["removed", "header", "data"])
def test_a_damaged_checkpoint_fails_naming_the_file(capsys, tmp_path, how):
    checkpoint = tmp_path / "franka_rgbd"
    shutil.copytree(REPO / "models" / "franka_rgbd", checkpoint)
    assert doctor.check_checkpoint(checkpoint).status == doctor.OK  # the copy itself is fine
    damaged = _damage(checkpoint, how)
    code, out, _ = run(capsys, "doctor", *FAST, "--checkpoint", str(checkpoint))
    assert code == 1
    [line] = lines_of(out, "checkpoint franka_rgbd:")
    assert line.startswith("FAIL")
    if how == "data":
        shipped_id = json.loads((REPO / "models" / "franka_rgbd" / "config.json").read_text())["model_id"]
        assert shipped_id in line and "policy.safetensors" in line
    else:
        assert damaged in line
    assert out.rstrip().endswith("1 FAIL")


def test_a_checkpoint_without_config_fails(tmp_path):
    check = doctor.check_checkpoint(tmp_path)
    assert check.status == doctor.FAIL and str(tmp_path / "config.json") in check.reason


def test_a_missing_dds_profile_fails_naming_it(capsys, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "fastdds.xml"
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", str(missing))
    code, out, _ = run(capsys, "doctor", *FAST)
    assert code == 1
    [line] = lines_of(out, "Fast DDS profile:")
    assert line.startswith("FAIL") and str(missing) in line


def test_dds_profile_and_offline_checks():
    broken = Path(os.environ["FASTDDS_DEFAULT_PROFILES_FILE"]).with_name("does-not-matter")
    assert doctor.check_fastdds_profile({}).status == doctor.WARN
    check = doctor.check_fastdds_profile({"FASTDDS_DEFAULT_PROFILES_FILE": str(REPO / "config" / "fastdds.xml")})
    assert check.status == doctor.OK and "16 MB" in check.reason
    assert doctor.check_fastdds_profile({"FASTDDS_DEFAULT_PROFILES_FILE": str(broken)}).status == doctor.FAIL
    assert doctor.check_hf_offline({"HF_HUB_OFFLINE": "1"}).status == doctor.OK
    assert doctor.check_hf_offline({}).status == doctor.WARN
    assert doctor.check_ros_distro({"ROS_DISTRO": "humble"}).status == doctor.WARN


def test_an_invalid_dds_profile_fails(tmp_path):
    profile = tmp_path / "fastdds.xml"
    profile.write_text("<profiles><transport_descriptors></profiles>")
    check = doctor.check_fastdds_profile({"FASTDDS_DEFAULT_PROFILES_FILE": str(profile)})
    assert check.status == doctor.FAIL and str(profile) in check.reason and "XML" in check.reason


# ---------------------------------------------------------------------------- ROS graph

def _running(expected: list[doctor.Endpoint]) -> list[doctor.TopicInfo]:
    topics = {}
    for e in expected:
        info = topics.setdefault(e.topic, doctor.TopicInfo(e.topic, [e.type], [], []))
        (info.publishers if e.role == "pub" else info.subscribers).append(e.node)
    for topic in ("/camera/color/image_raw", "/camera/depth/image_raw", "/camera/depth/camera_info"):
        topics[topic].publishers.append("camera_driver")
    return list(topics.values())


def test_graph_comparison():
    expected = doctor.expected_endpoints("franka_rgbd")
    nodes = {e.node for e in expected}
    assert nodes == {"rgb_encoder", "depth_encoder", "fusion_node", "vla_node", "safety_shield"}
    assert {"/msvla/features/rgb", "/msvla/features/depth", "/camera/extrinsics"} <= {e.topic for e in expected}
    running = _running(expected)
    assert doctor.compare_topics(running, expected).status == doctor.OK
    assert "graph not running" in doctor.compare_topics([], expected).reason
    without_fusion = [doctor.TopicInfo(t.name, t.types, [n for n in t.publishers if n != "fusion_node"],
                                       [n for n in t.subscribers if n != "fusion_node"]) for t in running]
    check = doctor.compare_topics(without_fusion, expected)
    assert check.status == doctor.WARN and "nodes missing: fusion_node" in check.reason
    no_camera = [t for t in running if t.name != "/camera/color/image_raw"] + [
        doctor.TopicInfo("/camera/color/image_raw", ["sensor_msgs/msg/Image"], [], ["rgb_encoder"])]
    check = doctor.compare_topics(no_camera, expected)
    assert check.status == doctor.WARN and any("/camera/color/image_raw: no publisher" in d for d in check.details)
    rgb_only = {e.topic for e in doctor.expected_endpoints("franka_rgb")}
    assert "/msvla/features/depth" not in rgb_only and "/camera/color/camera_info" in rgb_only


def test_doctor_lists_the_ros_graph(capsys, monkeypatch):
    import functools

    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from std_msgs.msg import String

    context = rclpy.Context()
    # A domain of its own (the session's are 1-200): nodes other tests of this process left on the
    # session's domain would otherwise appear in the listing.
    rclpy.init(args=[], context=context, domain_id=201 + os.getpid() % 30,
               signal_handler_options=SignalHandlerOptions.NO)
    # The doctor joins the probe's context: between two participants Fast DDS discovery took up to
    # 3 s here, longer than this test may listen.
    monkeypatch.setattr(doctor, "observe_graph", functools.partial(doctor.observe_graph, context=context))
    try:
        node = rclpy.create_node("test_cli_probe", context=context)
        node.create_subscription(String, "/msvla/instruction", lambda msg: None, 1)
        node.create_publisher(String, "/msvla/fused", 1)  # the graph's FusedObservation topic, wrong type
        code, out, _ = run(capsys, "doctor", "--graph-seconds", "1")
    finally:
        context.try_shutdown()
    assert code == 1, out
    [line] = lines_of(out, "ROS graph (franka_rgbd):")
    assert line.startswith("FAIL") and "/msvla/fused is std_msgs/msg/String" in line
    assert "msvla_msgs/msg/FusedObservation" in line
    assert "/msvla/instruction  std_msgs/msg/String  publishers 0, subscribers 1" in out
    assert "/msvla/fused  std_msgs/msg/String  publishers 1, subscribers 0" in out


def test_observe_graph_in_its_own_context_starts_and_stops_cleanly():
    topics = doctor.observe_graph(0.2)
    assert all(isinstance(t, doctor.TopicInfo) and not t.name.startswith("/msvla_doctor") for t in topics)
    assert doctor.observe_graph(0.0) is not None  # a second context in the same process


# ------------------------------------------------------------------------- subcommands

@pytest.mark.parametrize("argv, wrapped, option", [
    (["doctor"], "model id recomputed", "--graph-seconds"),
    (["demo"], "python -m msvla_bringup.demo", "--episodes"),
    (["record"], "python -m msvla_sim.record_franka", "--seed-start"),
    (["record", "--vehicle"], "python -m msvla_sim.record_vehicle", "--steering-noise"),
    (["train"], "python -m msvla_training.train", "--stop-after"),
    (["eval"], "python -m msvla_training.evaluate", "--closed-loop-only"),
    (["eval", "--vehicle"], "python -m msvla_bringup.vehicle_eval", "--suites"),
    (["launch"], "ros2 launch msvla_bringup", "franka_rgbd.launch.py"),
])
def test_help_of_every_subcommand(capsys, argv, wrapped, option):
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    assert wrapped in " ".join(out.split()) and option in out
    if argv[0] != "doctor":
        assert f"usage: msvla {argv[0]}" in out


def test_top_level_help_lists_the_subcommands(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in cli.SUBCOMMANDS:
        assert f"    {name} " in out


def test_the_installed_entry_point_runs():
    from ament_index_python.packages import get_package_prefix

    script = Path(get_package_prefix("msvla_bringup")) / "lib" / "msvla_bringup" / "msvla"
    result = subprocess.run([str(script), "launch", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ros2 launch msvla_bringup franka_rgbd.launch.py" in result.stdout


def test_train_passes_its_arguments_to_the_trainer(capsys, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("not_a_train_key: 1\n")
    code, _, err = run(capsys, "train", "--config", str(config))
    assert code == 1
    assert err.startswith("msvla-train:") and str(config) in err and "not_a_train_key" in err


def test_record_passes_arguments_and_defaults_the_output(capsys):
    code, _, err = run(capsys, "record", "--episodes", "0")
    assert code == 2
    # the error comes from record_franka's own parser, under the msvla name: --output was supplied
    assert "msvla record: error: --episodes must be >= 1" in err


def test_arguments_reach_the_wrapped_main(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli, "call_main", lambda module, prog, argv: calls.append((module, prog, argv)) or 0)
    monkeypatch.chdir(tmp_path)  # no bags/franka here
    assert cli.main(["eval", "--episodes", "3"]) == 0
    assert cli.main(["eval", "--bags", "b", "--", "--vehicle"]) == 0
    assert cli.main(["eval", "--vehicle", "--episodes", "3"]) == 0
    assert cli.main(["record", "--vehicle", "--output=x", "--seconds", "5"]) == 0
    assert cli.main(["demo", "--robot", "vehicle"]) == 0
    assert calls == [
        ("msvla_training.evaluate", "msvla eval", ["--episodes", "3", "--closed-loop-only"]),
        ("msvla_training.evaluate", "msvla eval", ["--bags", "b", "--vehicle"]),
        ("msvla_bringup.vehicle_eval", "msvla eval --vehicle", ["--episodes", "3"]),
        ("msvla_sim.record_vehicle", "msvla record --vehicle", ["--output=x", "--seconds", "5"]),
        ("msvla_bringup.demo", "msvla demo", ["--robot", "vehicle"]),
    ]


def test_launch_runs_ros2_launch_with_the_arguments(tmp_path, monkeypatch):
    record = tmp_path / "ros2-args"
    fake = tmp_path / "bin" / "ros2"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" "profile=$FASTDDS_DEFAULT_PROFILES_FILE" > {record}\nexit 3\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert cli.main(["launch", "vehicle", "simulation:=true"]) == 3
    assert record.read_text().startswith("launch msvla_bringup vehicle_multisensor.launch.py simulation:=true "
                                         "profile=")
    assert cli.main(["launch", "variant:=rgb"]) == 3
    assert record.read_text().startswith("launch msvla_bringup franka_rgbd.launch.py variant:=rgb ")
    assert cli.main(["launch", "no_such"]) == 2
