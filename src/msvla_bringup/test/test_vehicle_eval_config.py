"""Vehicle evaluation set-up without starting anything: graph variants derived from the graph spec,
the evaluation config, and the report written from a results dict."""
import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from msvla_bringup.closed_loop import ClosedLoopError
from msvla_bringup.graph import GraphSpec, NodeSpec, load_graph, ros_arguments
from msvla_bringup.graph_variants import (VEHICLE_COMMAND_TOPIC, VEHICLE_PROPOSAL_TOPIC, GraphVariantError, ablate,
                                          ablation_effects, encoder_modalities, model_nodes, without_shield)
from msvla_bringup.vehicle_eval import (SuiteConfig, VehicleEvalConfig, all_variants, finish, merged_overrides,
                                        variant_graph)
from msvla_bringup.vehicle_metrics import DriveRow, EpisodeMetrics
from msvla_bringup.vehicle_report import write_report
from msvla_core.config import load_config

ROOT = Path(__file__).resolve().parents[3]
GRAPH = ROOT / "config" / "graphs" / "vehicle_multisensor.yaml"
CONFIG = ROOT / "config" / "eval" / "vehicle.yaml"


@pytest.fixture(scope="module")
def graph():
    return load_graph(str(GRAPH))


def with_extra_encoder(spec: GraphSpec) -> GraphSpec:
    """The graph plus an encoder it did not have before: tactile, default modality from the executable."""
    extra = NodeSpec(name="tactile_encoder", package="msvla_encoders", executable="tactile_encoder",
                     parameters=["vehicle/model.yaml"])
    return replace(spec, nodes=[*spec.nodes, extra])


def test_encoders_and_model_nodes_come_from_the_graph(graph):
    spec, base = graph
    encoders = encoder_modalities(spec, base)
    assert encoders["rgb_encoder"] == "camera"  # its modality parameter, not the executable's default
    assert {"camera", "lidar", "radar", "imu"} <= set(encoders.values())
    assert encoder_modalities(with_extra_encoder(spec), base)["tactile_encoder"] == "tactile"
    nodes = model_nodes(spec, base)
    assert set(encoders) <= set(nodes) and {"fusion_node", "vla_node"} <= set(nodes)
    assert "vehicle_sim" not in nodes and "safety_shield" not in nodes


def test_ablation_leaves_out_the_encoder_and_reports_what_that_does(graph):
    spec, base = graph
    no_camera = ablate(spec, base, ["camera"])
    assert "rgb_encoder" not in [n.name for n in no_camera.nodes]
    assert len(no_camera.nodes) == len(spec.nodes) - 1
    effects = ablation_effects(no_camera, base, ["camera"], {})
    assert effects.shield_stops
    assert any("fusion_node: reference_modality 'camera'" in n for n in effects.notes)
    assert any("safety_shield: required_modalities includes the ablated ['camera']" in n for n in effects.notes)
    adapted = ablation_effects(no_camera, base, ["camera"], {"fusion_node": {"reference_modality": "lidar"},
                                                             "safety_shield": {"required_modalities": ["lidar"]}})
    assert adapted.notes == [] and not adapted.shield_stops
    assert ablation_effects(ablate(spec, base, ["radar"]), base, ["radar"], {}).notes == []
    with pytest.raises(GraphVariantError, match=r"cannot ablate \['sonar'\]"):
        ablate(spec, base, ["sonar"])


def test_shield_off_forwards_proposals_to_the_vehicle_only_in_simulation(graph):
    spec, base = graph
    off = without_shield(spec, simulation=True)
    assert "safety_shield" not in [n.name for n in off.nodes] and "SIMULATION ONLY" in off.description
    vla = next(n for n in off.nodes if n.name == "vla_node")
    assert vla.remappings == {VEHICLE_PROPOSAL_TOPIC: VEHICLE_COMMAND_TOPIC}
    assert ["-r", f"{VEHICLE_PROPOSAL_TOPIC}:={VEHICLE_COMMAND_TOPIC}"] == ros_arguments(vla, base)[-2:]
    assert next(n for n in spec.nodes if n.name == "vla_node").remappings == {}  # the original is untouched
    with pytest.raises(GraphVariantError, match="outside simulation"):
        without_shield(spec, simulation=False)
    no_sim = replace(spec, nodes=[n for n in spec.nodes if not n.simulation_only])
    with pytest.raises(GraphVariantError, match="no simulation-only node"):
        without_shield(no_sim, simulation=True)


def test_the_shipped_config_loads_and_makes_one_ablation_per_encoder(graph):
    spec, base = graph
    cfg = load_config(VehicleEvalConfig, CONFIG)
    variants = all_variants(cfg)
    assert {"shield_on", "shield_off"} <= set(variants)
    assert {f"no_{m}" for m in encoder_modalities(spec, base).values()} <= set(variants)
    assert all(s.seed_start >= 900000 for s in cfg.suites.values())
    route, stop = cfg.suites["route"], cfg.suites["stop"]
    assert route.overrides["vehicle_sim"]["in_lane_fraction"] == 0.0
    assert stop.overrides["vehicle_sim"]["in_lane_fraction"] == 1.0 and stop.kinds == ["stop_before_obstacle"]
    off_spec, _ = variant_graph(cfg, variants["shield_off"])
    # shared settings skip the shield the variant removed; the variant's own must fit its graph
    merged = merged_overrides(off_spec, {"safety_shield": {"max_speed": 5.0}}, route.overrides, {})
    assert merged == {"vehicle_sim": {"in_lane_fraction": 0.0}}
    with pytest.raises(ClosedLoopError, match="'safety_shield', which graph vehicle_multisensor_shield_off does not have"):
        merged_overrides(off_spec, route.overrides, {"safety_shield": {"max_speed": 5.0}})


def test_config_refuses_recording_seeds_unknown_kinds_and_unknown_ablation_modalities():
    with pytest.raises(ValueError, match="recording"):
        SuiteConfig(kinds=["follow_lane"], seed_start=1000)
    with pytest.raises(ValueError, match="kinds"):
        SuiteConfig(kinds=["park"])
    cfg = load_config(VehicleEvalConfig, CONFIG)
    cfg.sensor_ablations.overrides["sonar"] = {}
    with pytest.raises(GraphVariantError, match=r"names \['sonar'\]"):
        all_variants(cfg)


def test_report_has_an_overview_and_a_table_per_variant(tmp_path):
    metrics = EpisodeMetrics(route_fraction=0.5, route_complete=False, collision=True, lane_departure_s=1.5,
                             mean_speed_mps=3.0, moving_speed_mps=4.0, jerk_rms=2.0, jerk_p95=5.0,
                             steering_rate_rms=0.1, stop_gap_m=None, compliant=False, latency_ms=[90.0, 110.0],
                             model_driven=1.0, shield_stopped=0.0)
    row = DriveRow(seed=900000, kind="follow_lane", instruction="follow the lane", end="collision", seconds=12.0,
                   metrics=metrics)
    cfg = load_config(VehicleEvalConfig, CONFIG)
    record = {"graph": "vehicle_multisensor", "overrides": {"vehicle_sim": {"in_lane_fraction": 0.0}},
              "notes": ["safety_shield: example note"], "rows": [row], "startup_s": 20.0, "ignored_overrides": [],
              "unclean_exits": {"vla_node": -15}}
    results = {"command": "test", "checkpoint": "/x/vehicle_multisensor", "model_id": "abc", "date": "today",
               "config": asdict(cfg), "variant_configs": {"shield_on": asdict(all_variants(cfg)["shield_on"])},
               "variants": {"shield_on": {"route": finish(record)}}, "error": "TimeoutError: example"}
    json.dumps(results)  # what results.json gets
    text = write_report(results, tmp_path).read_text()
    assert "## Overview" in text and "## Variant shield_on" in text and "### shield_on / route" in text
    assert "The run stopped early: TimeoutError: example" in text
    assert "| shield_on | route | 1 | 50 % | 0/1 = 0 % [0 %, 79 %] | 1/1 = 100 % [21 %, 100 %] | 1.5 |" in text
    assert "| 2.0 / 5.0 | 0.100 | 3.00 | - | 100 / 110 |" in text  # jerk, steering, speed, stop gap, latency
    assert "did not exit cleanly on SIGINT (exit codes): {'vla_node': -15}" in text
    assert "effect: safety_shield: example note" in text and "| 900000 | follow the lane | collision |" in text
