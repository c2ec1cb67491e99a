"""The diagnostic_aggregator configuration groups every node of every graph exactly once, and the
nodes' diagnostics carry input rates and latencies (FlowStats)."""
import time
from pathlib import Path

import pytest

from msvla_bringup.graph import load_graph
from msvla_core.config import load_yaml
from msvla_ros.diagnostics import FlowStats

ROOT = Path(__file__).resolve().parents[3]
MATCHERS = {"startswith": str.startswith, "endswith": str.endswith, "contains": lambda name, s: s in name,
            "name": str.__eq__}


def groups_of(status_name: str, analyzers: dict) -> list[str]:
    """The GenericAnalyzer paths whose startswith/endswith/contains/name lists match a status name."""
    found = []
    for key, analyzer in analyzers.items():
        if not isinstance(analyzer, dict):
            continue
        assert analyzer["type"] == "diagnostic_aggregator/GenericAnalyzer", key
        if any(MATCHERS[kind](status_name, pattern) for kind in MATCHERS for pattern in analyzer.get(kind, [])):
            found.append(analyzer["path"])
    return found


@pytest.mark.parametrize("graph", sorted(p.stem for p in (ROOT / "config" / "graphs").glob("*.yaml")))
def test_every_graph_node_is_in_exactly_one_group(graph):
    analyzers = load_yaml(ROOT / "config" / "diagnostics" / "aggregator.yaml")["analyzers"]["ros__parameters"]
    spec, _ = load_graph(graph)
    for node in spec.nodes:
        assert len(groups_of(node.name, analyzers)) == 1, (node.name, groups_of(node.name, analyzers))


def test_flow_stats_report_rates_hop_and_age_percentiles():
    flow = FlowStats(rate_window_s=1.0)
    assert flow.values() == {}
    for _ in range(20):
        flow.received("image")
    for hop in range(1, 101):
        flow.published(float(hop), age_ms=float(hop) + 10.0)
    flow.published(None, age_ms=500.0)  # a command the node made up itself: no hop
    values = flow.values()
    assert values["rate.image_hz"] == "20.0"
    assert values["hop_ms_median"] == "50.50" and float(values["hop_ms_p99"]) == pytest.approx(99.01, abs=0.01)
    assert float(values["age_ms_p99"]) > 100.0
    time.sleep(1.05)
    assert flow.values()["rate.image_hz"] == "0.0"
