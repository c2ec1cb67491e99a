"""Tests for msvla_core.config: YAML loading and typed dataclass building."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msvla_core.config import ConfigError, from_dict, load_config, load_yaml

WHERE = "config/graphs/franka.yaml"


@dataclass(frozen=True)
class NodeSpec:
    name: str
    package: str
    parameters: dict[str, Any] = field(default_factory=dict)
    rate_hz: float = 10.0
    enabled: bool = True
    remap: Optional[dict[str, str]] = None

    def __post_init__(self):
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz={self.rate_hz} must be positive")


@dataclass
class Camera:
    resolution: tuple[int, int]
    intrinsics: tuple[float, ...]
    mode: Literal["rgb", "depth"] = "rgb"


@dataclass(frozen=True)
class Graph:
    robot: str
    nodes: list[NodeSpec]
    camera: Optional[Camera] = None
    weights: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    gain: int | str = 1


def graph_dict(**overrides):
    data = {
        "robot": "franka",
        "nodes": [
            {"name": "cam", "package": "msvla_sensors"},
            {"name": "fuse", "package": "msvla_fusion", "rate_hz": 30},
            {"name": "policy", "package": "msvla_policy", "parameters": {"k": [1, 2]},
             "remap": {"in": "/fused"}},
        ],
        "camera": {"resolution": [640, 480], "intrinsics": [500, 500.5, 320, 240],
                   "mode": "depth"},
        "weights": {"arm": 0.5, "base": 1},
        "seed": 7,
    }
    data.update(overrides)
    return data


def test_builds_nested_dataclasses():
    graph = from_dict(Graph, graph_dict(), WHERE)
    assert graph.robot == "franka" and graph.seed == 7
    assert graph.nodes[1].rate_hz == 30.0 and isinstance(graph.nodes[1].rate_hz, float)
    assert graph.nodes[0].parameters == {} and graph.nodes[0].remap is None
    assert graph.nodes[2].parameters == {"k": [1, 2]}
    assert graph.camera == Camera((640, 480), (500.0, 500.5, 320.0, 240.0), "depth")
    assert graph.weights == {"arm": 0.5, "base": 1.0}
    assert from_dict(Graph, graph_dict(camera=None, seed=None), WHERE).camera is None


def error_message(data, cls=Graph):
    with pytest.raises(ConfigError) as info:
        from_dict(cls, data, WHERE)
    return str(info.value)


def test_unknown_key_names_path_and_choices():
    data = graph_dict()
    data["nodes"][2]["paramters"] = data["nodes"][2].pop("parameters")
    message = error_message(data)
    assert message.startswith(f"{WHERE}: nodes[2].paramters: unknown key; expected one of ")
    assert "parameters" in message and "did you mean 'parameters'?" in message


def test_unknown_top_level_key():
    assert error_message(graph_dict(robto="x")).startswith(f"{WHERE}: robto: unknown key")


def test_missing_required_key():
    data = graph_dict()
    del data["nodes"][0]["package"]
    assert error_message(data) == (
        f"{WHERE}: nodes[0].package: missing required key (expected str)")


@pytest.mark.parametrize("overrides, path, fragment", [
    ({"robot": 5}, "robot", "expected str, got 5 (int)"),
    ({"seed": "seven"}, "seed", "got 'seven' (str)"),
    ({"seed": True}, "seed", "got True (bool)"),
    ({"seed": 1.5}, "seed", "got 1.5 (float)"),
    ({"nodes": {"name": "cam"}}, "nodes", "expected list[NodeSpec]"),
    ({"nodes": ["cam"]}, "nodes[0]", "expected a mapping for NodeSpec, got 'cam' (str)"),
    ({"weights": {"arm": "heavy"}}, "weights.arm", "expected float, got 'heavy' (str)"),
    ({"weights": {"arm": True}}, "weights.arm", "expected float, got True (bool)"),
    ({"weights": [1.0]}, "weights", "expected dict[str, float]"),
    ({"camera": {"resolution": [640], "intrinsics": []}}, "camera.resolution",
     "with 2 items, got 1 items"),
    ({"camera": {"resolution": [640, "480"], "intrinsics": []}}, "camera.resolution[1]",
     "expected int, got '480' (str)"),
    ({"camera": {"resolution": [1, 2], "intrinsics": [1.0, None]}}, "camera.intrinsics[1]",
     "expected float, got None (NoneType)"),
    ({"camera": {"resolution": [1, 2], "intrinsics": 3.0}}, "camera.intrinsics",
     "expected tuple[float, ...], got 3.0 (float)"),
    ({"camera": {"resolution": [1, 2], "intrinsics": [], "mode": "ir"}}, "camera.mode",
     "expected one of 'rgb', 'depth', got 'ir' (str)"),
    ({"camera": "usb0"}, "camera", "expected a mapping for Camera, got 'usb0' (str)"),
    ({"gain": 1.5}, "gain", "expected int | str, got 1.5 (float)"),
])
def test_wrong_types_name_key_expected_type_and_value(overrides, path, fragment):
    message = error_message(graph_dict(**overrides))
    assert message.startswith(f"{WHERE}: {path}: "), message
    assert fragment in message


def test_bool_fields_reject_integers():
    data = graph_dict()
    data["nodes"][0]["enabled"] = 1
    assert "nodes[0].enabled: expected bool, got 1 (int)" in error_message(data)


def test_optional_dict_values_are_checked():
    data = graph_dict()
    data["nodes"][2]["remap"] = {"in": 3}
    assert "nodes[2].remap.in: expected str, got 3 (int)" in error_message(data)


def test_exponent_without_dot_gets_a_hint():
    data = graph_dict()
    data["nodes"][0]["rate_hz"] = "1e3"
    assert "write numbers with a dot" in error_message(data)


def test_post_init_value_error_is_rewrapped_with_path():
    data = graph_dict()
    data["nodes"][1]["rate_hz"] = -1
    assert error_message(data) == f"{WHERE}: nodes[1]: rate_hz=-1.0 must be positive"


def test_root_must_be_mapping():
    expected = f"{WHERE}: expected a mapping for Graph, got ['robot'] (list)"
    assert error_message(["robot"]) == expected


def test_from_dict_needs_dataclass():
    with pytest.raises(TypeError):
        from_dict(dict, {}, WHERE)


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_any_unknown_key_is_reported_by_name(key):
    known = {"name", "package", "parameters", "rate_hz", "enabled", "remap"}
    data = {"name": "n", "package": "p"}
    if key in known:
        return
    data[key] = 1
    message = error_message(data, NodeSpec)
    assert message.startswith(f"{WHERE}: {key}: unknown key")


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(1, 10**6), st.floats(min_value=1e-6, max_value=1e6)))
def test_float_fields_accept_any_positive_number(value):
    node = from_dict(NodeSpec, {"name": "n", "package": "p", "rate_hz": value}, WHERE)
    assert node.rate_hz == float(value) and type(node.rate_hz) is float


@dataclass
class Loose:
    items: list
    table: dict
    pair: tuple = ()


def test_bare_container_annotations_accept_any_items():
    loose = from_dict(Loose, {"items": [1, "a"], "table": {"k": None}, "pair": [1, 2]}, WHERE)
    assert loose == Loose([1, "a"], {"k": None}, (1, 2))
    assert "items: expected list, got 3 (int)" in error_message({"items": 3, "table": {}}, Loose)


# --- YAML files ---------------------------------------------------------------

def test_load_yaml_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{path}: config file not found")):
        load_yaml(path)


def test_load_yaml_reports_line_of_syntax_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("robot: franka\nnodes:\n  - name: [cam\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}:4:") + ".*invalid YAML"):
        load_yaml(path)


def test_load_yaml_rejects_duplicate_keys(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("robot: franka\nseed: 1\nrobot: ur5\n")
    expected = f"{path}:3:1: invalid YAML: found duplicate key 'robot'"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_yaml(path)


def test_load_yaml_empty_file_is_empty_mapping(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n")
    assert load_yaml(path) == {}


def test_load_config_end_to_end(tmp_path):
    path = tmp_path / "graph.yaml"
    path.write_text(
        "robot: franka\n"
        "nodes:\n"
        "  - {name: cam, package: msvla_sensors}\n"
        "  - name: fuse\n"
        "    package: msvla_fusion\n"
        "    paramters: {}\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: nodes[1].paramters: unknown key")):
        load_config(Graph, path)
    path.write_text("robot: franka\nnodes:\n  - {name: cam, package: msvla_sensors}\n")
    assert load_config(Graph, path).nodes[0].name == "cam"
