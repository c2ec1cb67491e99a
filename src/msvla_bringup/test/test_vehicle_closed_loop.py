"""Graph test of the vehicle evaluation: the episode driver on the real vehicle graph (separate
processes over DDS), one short episode with the shield on, and the shield-off wiring delivering the
VLA's proposals to the simulator.

Each graph is started once and stopped before its fixture returns (one simulator at a time on the
test's DDS domain). Every model node imports torch (seconds, ~240 MB), so the shield-off
graph keeps only the encoder of fusion's reference modality, which is all the VLA needs to propose;
the wiring under test (VLA -> /msvla/vehicle/command -> simulator) is the one the full variant has.
The checkpoint is untrained, so nothing here judges the driving, only that the numbers come back.
"""
import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest

from msvla_bringup.graph import load_graph, node_parameters
from msvla_bringup.graph_variants import VEHICLE_COMMAND_TOPIC, ablate, encoder_modalities, without_shield
from msvla_bringup.vehicle_episodes import VehicleSession
from msvla_bringup.vehicle_metrics import episode_metrics
from msvla_core.models.checkpoint import verify
from msvla_sim.vehicle_expert import PHRASINGS

pytestmark = pytest.mark.graph

ROOT = Path(__file__).resolve().parents[3]
GRAPH = ROOT / "config" / "graphs" / "vehicle_multisensor.yaml"
CHECKPOINT = ROOT / "models" / "vehicle_multisensor"
SEED = 900000
# a short course with its lane clear; a car that stands still ends its episode after 2 s
SIM = {"vehicle_sim": {"course_length": 20.0, "in_lane_fraction": 0.0}}
KINDS = ["follow_lane", "drive_slowly"]


def command_publishers(session) -> list[str]:
    return sorted(i.node_name for i in session.driver.get_publishers_info_by_topic(VEHICLE_COMMAND_TOPIC))


@pytest.fixture(scope="module")
def shield_on(tmp_path_factory):
    spec, base = load_graph(str(GRAPH))
    with VehicleSession(spec, base, CHECKPOINT, tmp_path_factory.mktemp("vehicle_on"), SIM,
                        startup_timeout_s=90.0) as session:
        row = session.run_episode(SEED, KINDS, timeout_s=12.0, standstill_s=2.0)
        return row, command_publishers(session), session.ignored_overrides


@pytest.fixture(scope="module")
def shield_off(tmp_path_factory):
    spec, base = load_graph(str(GRAPH))
    reference = next(node_parameters(n, base)["reference_modality"] for n in spec.nodes if n.name == "fusion_node")
    others = sorted(set(encoder_modalities(spec, base).values()) - {reference})
    spec = without_shield(ablate(spec, base, others), simulation=True)
    with VehicleSession(spec, base, CHECKPOINT, tmp_path_factory.mktemp("vehicle_off"), SIM, forwarded=True,
                        startup_timeout_s=90.0) as session:
        end, trace, _ = session.driver.run_episode(SEED, "follow_lane", "follow the lane", 12.0, 2.0, 0.2,
                                                   session.runner.check)
        shield_status = session.driver.count_publishers("/msvla/safety/status")
        return trace, episode_metrics(trace), command_publishers(session), shield_status


def test_a_shielded_episode_gives_a_row_with_sane_fields(shield_on):
    row, publishers, ignored = shield_on
    assert publishers == ["safety_shield"] and ignored == []
    data = json.loads(json.dumps(asdict(row)))  # what results.json gets
    assert data["seed"] == SEED and data["kind"] in KINDS and data["instruction"] in PHRASINGS[data["kind"]]
    assert data["end"] in ("route_complete", "collision", "stopped", "timeout") and 0.0 < data["seconds"] < 30.0
    m = data["metrics"]
    assert 0.0 <= m["route_fraction"] <= 1.0 and m["lane_departure_s"] >= 0.0
    assert m["mean_speed_mps"] is not None and m["mean_speed_mps"] >= 0.0
    assert m["steering_rate_rms"] is not None and math.isfinite(m["steering_rate_rms"])
    assert m["jerk_rms"] is not None and m["jerk_p95"] >= 0.0
    assert m["compliant"] in (True, False)  # follow_lane / drive_slowly are always judged
    assert 0.0 <= m["model_driven"] <= 1.0 and 0.0 <= m["shield_stopped"] <= 1.0
    assert m["stop_gap_m"] is None  # in_lane_fraction 0: no static obstacle in the lane
    if m["model_driven"] > 0:
        assert m["latency_ms"] and all(0.0 < v < 2000.0 for v in m["latency_ms"]), m["latency_ms"]


def test_without_the_shield_the_simulator_executes_the_vla_proposals(shield_off):
    trace, m, publishers, shield_status = shield_off
    assert publishers == ["vla_node"] and shield_status == 0  # nothing else commands the vehicle
    model_id = verify(CHECKPOINT)
    assert m.model_driven == 1.0 and m.shield_stopped is None
    # each command is a proposal: stamped with its sensor data, received after it
    assert len(m.latency_ms) >= 10 and all(0.0 < v < 2000.0 for v in m.latency_ms), m.latency_ms
    # the simulator reports what it executed: the VLA's commands, from the checkpoint under test
    executed = [s["command"] for s in trace.statuses]
    assert executed and executed[-1]["source"] == "command", executed[-3:]
    assert {c["model_id"] for c in executed if c["source"] == "command"} == {model_id}
