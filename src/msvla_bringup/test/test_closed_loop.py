"""Closed-loop evaluation: the RGB-D graph with the shipped checkpoint grasps in the simulator on
held-out seeds; a broken checkpoint is refused before anything starts; a dying node ends the run
with its log. The graph is started once for the module."""
import json
import os
import signal
from pathlib import Path

import pytest

from msvla_bringup.closed_loop import ClosedLoopError, ClosedLoopSession, graph_overrides, run_closed_loop, run_episodes
from msvla_bringup.graph import load_graph
from msvla_bringup.runner import NodeProcessDied
from msvla_core.models.checkpoint import CheckpointError

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[3]
GRAPH = ROOT / "config" / "graphs" / "franka_rgbd.yaml"
CHECKPOINT = ROOT / "models" / "franka_rgbd"
SEEDS = [900000, 900001, 900002]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    # rate_hz is a simulator parameter (applied); no_such_parameter is not (reported as ignored)
    overrides = {"franka_sim": {"rate_hz": 10.0, "no_such_parameter": 1}}
    with ClosedLoopSession(GRAPH, CHECKPOINT, tmp_path_factory.mktemp("closed_loop_logs"), overrides,
                           startup_timeout_s=90.0) as running:
        yield running


@pytest.fixture(scope="module")
def result(session):
    return run_episodes(session, SEEDS, timeout_s=40.0)


def test_results_have_one_row_per_seed_and_a_summary(result):
    data = json.loads(json.dumps(result.to_dict()))  # what msvla-eval writes to results.json
    expected_id = json.loads((CHECKPOINT / "config.json").read_text())["model_id"]
    assert data["model_id"] == expected_id and data["checkpoint"] == str(CHECKPOINT.resolve())
    assert [e["seed"] for e in data["episodes"]] == SEEDS
    for e in data["episodes"]:
        assert set(e) == {"seed", "instruction", "target", "lifted", "success", "outcome", "latency_ms", "seconds",
                          "shield_reset"}
        assert e["outcome"] in ("success", "failure", "timeout") and e["success"] == (e["outcome"] == "success")
        assert e["instruction"] and e["seconds"] > 0
    s = data["summary"]
    assert s["episodes"] == 3 and s["successes"] == sum(e["success"] for e in data["episodes"])
    assert s["shield_resets"] == sum(bool(e["shield_reset"]) for e in data["episodes"])
    lo, hi = s["wilson95"]
    assert 0.0 <= lo <= s["success_rate"] <= hi <= 1.0
    assert s["latency_ms_median"] is not None and s["latency_ms_median"] <= s["latency_ms_p99"]
    assert data["ignored_overrides"] == ["franka_sim.no_such_parameter"]


def test_the_shipped_model_grasps_the_named_object(result):
    wins = [e for e in result.episodes if e.success]
    assert wins, [(e.instruction, e.outcome, e.lifted) for e in result.episodes]
    assert all(e.target in e.lifted and e.latency_ms is not None for e in wins)


def test_a_broken_checkpoint_is_refused_before_any_node_starts(tmp_path):
    with pytest.raises(CheckpointError, match="config.json not found"):
        run_closed_loop(GRAPH, tmp_path / "no_such_checkpoint", SEEDS, tmp_path / "logs")
    assert not (tmp_path / "logs").exists()
    spec, _ = load_graph(str(GRAPH))
    with pytest.raises(ClosedLoopError, match="overrides.vla_node.checkpoint"):
        graph_overrides(spec, CHECKPOINT, {"vla_node": {"checkpoint": "/elsewhere"}})
    with pytest.raises(ClosedLoopError, match="'lidar_encoder', which graph franka_rgbd does not have"):
        graph_overrides(spec, CHECKPOINT, {"lidar_encoder": {"num_threads": 1}})


def test_a_dying_node_ends_the_run_with_its_log_tail(session, result):
    shield = session.runner.process_of("safety_shield")
    os.kill(shield.process.pid, signal.SIGKILL)  # a process this test's session started
    shield.process.wait(timeout=10)
    with pytest.raises(NodeProcessDied, match="node safety_shield .* exited") as died:
        session.run_episode(900003, timeout_s=20.0)
    assert "last log lines" in str(died.value)
