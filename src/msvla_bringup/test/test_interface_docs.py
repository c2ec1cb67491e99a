"""The package READMEs' interface sections and config/params/*.yaml are generated from the node
declarations (msvla_bringup.interfaces + each node's parameter_specs) and must not drift from them.
That running nodes create exactly the documented endpoints is checked in the graph tests."""
import shutil
from pathlib import Path

import pytest
from rclpy.parameter import Parameter, parameter_dict_from_yaml_file

from msvla_bringup import interface_docs
from msvla_bringup.interfaces import NODES, Endpoint, by_executable

ROOT = Path(__file__).resolve().parents[3]


def test_generated_files_are_current():
    assert interface_docs.stale_files(ROOT) == [], \
        "run: python -m msvla_bringup.interface_docs --write"


def test_every_node_executable_of_the_workspace_is_documented():
    executables = set()
    for setup_py in ROOT.glob("src/*/setup.py"):
        text = setup_py.read_text()
        for line in text.splitlines():
            if "_node:main" in line:  # console_scripts entries of ROS nodes
                executables.add(line.split("=")[0].strip().strip('"'))
    assert executables, "no node entry points found"
    assert executables == {n.executable for n in NODES}


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.executable)
def test_default_parameter_file_loads_in_ros_and_validates(node):
    path = ROOT / "config" / "params" / f"{node.executable}.yaml"
    loaded = parameter_dict_from_yaml_file(str(path), target_nodes=[node.node_name])
    specs = {s.name: s for s in node.parameter_specs()}
    unset = {name for name, s in specs.items() if s.type is list and not s.default}
    assert set(loaded) == set(specs) - unset
    for name, param in loaded.items():
        value = Parameter.from_parameter_msg(param).value
        if not isinstance(value, (bool, int, float, str)):
            value = list(value)  # arrays come back as array.array or tuples
        assert specs[name].validate(value) == specs[name].default


def test_a_changed_declaration_makes_its_files_stale(tmp_path, monkeypatch):
    for package in {n.package for n in NODES}:
        target = tmp_path / "src" / package
        target.mkdir(parents=True)
        shutil.copy(ROOT / "src" / package / "README.md", target / "README.md")
    shutil.copytree(ROOT / "config" / "params", tmp_path / "config" / "params")
    assert interface_docs.stale_files(tmp_path) == []
    vla = by_executable("vla_node")
    cls = vla.load_class()
    original = cls.parameter_specs
    monkeypatch.setattr(cls, "parameter_specs", classmethod(lambda c: original()[:-1]))
    assert set(interface_docs.stale_files(tmp_path)) == {tmp_path / "config" / "params" / "vla_node.yaml",
                                                         tmp_path / "src" / "msvla_vla" / "README.md"}


def test_readme_without_markers_is_an_error(tmp_path):
    for package in {n.package for n in NODES}:
        (tmp_path / "src" / package).mkdir(parents=True)
        (tmp_path / "src" / package / "README.md").write_text(f"# {package}\n")
    with pytest.raises(ValueError, match="markers"):
        interface_docs.expected_files(tmp_path)


def test_unknown_qos_name_is_refused():
    with pytest.raises(ValueError, match="unknown QoS name 'fast'"):
        Endpoint("/x", "std_msgs/msg/String", "fast", "")
