"""Robot graphs as data: which executables run, with which parameter files and remappings.

The same spec drives the process runner (machines with only the PyPI wheels) and the launch files
(ROS 2 machines), so both start identical `--ros-args`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from msvla_core.config import from_dict, load_yaml


@dataclass
class NodeSpec:
    name: str
    package: str
    executable: str
    parameters: list[str] = field(default_factory=list)  # files relative to the config folder
    remappings: dict[str, str] = field(default_factory=dict)
    simulation_only: bool = False  # started only when the graph runs against the simulator
    # Commands the robot (the shield): its actuation_enabled parameter is set by whoever starts the
    # graph - true against the simulator, false (a dry run) on a robot unless asked for.
    actuator: bool = False
    # Nodes with the same process name run in one process (the node_container executable, one
    # executor); empty: a process of its own.
    process: str = ""

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"node name {self.name!r} must be a valid ROS node name")
        if self.process and not self.process.isidentifier():
            raise ValueError(f"node {self.name}: process {self.process!r} must be an identifier")


@dataclass
class GraphSpec:
    name: str
    description: str
    nodes: list[NodeSpec]

    def __post_init__(self):
        names = [n.name for n in self.nodes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate node names {duplicates}")
        for node in self.nodes:
            # The shield must outlive a crash of the model it guards: it never shares a process.
            shared = [n.name for n in self.nodes if n.process and n.process == node.process and n is not node]
            if node.actuator and shared:
                raise ValueError(f"node {node.name} commands the robot and cannot share process "
                                 f"{node.process!r} with {shared}")
            if node.process in names:
                raise ValueError(f"node {node.name}: process {node.process!r} is also a node name")

    def selected(self, simulation: bool) -> list[NodeSpec]:
        return [n for n in self.nodes if simulation or not n.simulation_only]


def config_dir() -> Path:
    """The installed config folder (share/msvla_bringup/config)."""
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("msvla_bringup")) / "config"


def load_graph(name_or_path: str, base: Path | None = None) -> tuple[GraphSpec, Path]:
    """Load `config/graphs/<name>.yaml` (or a path); returns the spec and its config folder."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        base = base or config_dir()
        path = base / "graphs" / f"{name_or_path}.yaml"
    base = base or path.parent.parent
    spec = from_dict(GraphSpec, load_yaml(path), where=str(path))
    for node in spec.nodes:
        for rel in node.parameters:
            if not (base / rel).is_file():
                raise FileNotFoundError(f"{path}: node {node.name} names parameter file {rel}, "
                                        f"which does not exist under {base}")
    return spec, base


def node_parameters(node: NodeSpec, base: Path) -> dict:
    """The parameters a node starts with from its parameter files, before any override: per file in
    order, the `/**` section and then the node's own section, later ones winning.
    Lets tools reason about a graph (which modality an encoder publishes, which modalities the shield
    requires) without starting it."""
    values: dict = {}
    for rel in node.parameters:
        data = load_yaml(base / rel) or {}
        for key in ("/**", node.name, f"/{node.name}"):
            values.update((data.get(key) or {}).get("ros__parameters") or {})
    return values


def ros_arguments(node: NodeSpec, base: Path, override_file: Path | None = None) -> list[str]:
    """The `--ros-args` a node is started with (identical for the runner and launch).

    Overrides go in a node-specific parameter file given last: a plain `-p` is global and loses to
    the node-specific entries of the graph's parameter files.
    """
    args = ["--ros-args", "-r", f"__node:={node.name}"]
    for rel in node.parameters:
        args += ["--params-file", str(base / rel)]
    if override_file is not None:
        args += ["--params-file", str(override_file)]
    for src, dst in node.remappings.items():
        args += ["-r", f"{src}:={dst}"]
    return args


def process_groups(nodes: list[NodeSpec]) -> list[list[NodeSpec]]:
    """The processes that run `nodes`, in start order: nodes sharing a process name together
    (placed where the first of them is), every other node alone."""
    groups: list[list[NodeSpec]] = []
    by_name: dict[str, list[NodeSpec]] = {}
    for node in nodes:
        if node.process in by_name:
            by_name[node.process].append(node)
            continue
        groups.append([node])
        if node.process:
            by_name[node.process] = groups[-1]
    return groups


def container_arguments(nodes: list[NodeSpec], base: Path, override_files: dict[str, Path]) -> list[str]:
    """node_container's arguments for `nodes`: per node its package/executable and the
    `--ros-args` it would get as a process of its own."""
    args: list[str] = []
    for n in nodes:
        args += ["--node", f"{n.package}/{n.executable}", *ros_arguments(n, base, override_files.get(n.name))]
    return args


def actuation_overrides(spec: GraphSpec, enabled: bool) -> dict[str, dict]:
    """Per actuator node, the actuation_enabled parameter it starts with."""
    return {n.name: {"actuation_enabled": bool(enabled)} for n in spec.nodes if n.actuator}


def merge_overrides(*layers: dict[str, dict]) -> dict[str, dict]:
    """Per-node parameter overrides, later layers winning parameter by parameter."""
    merged: dict[str, dict] = {}
    for layer in layers:
        for node, values in (layer or {}).items():
            merged.setdefault(node, {}).update(values)
    return merged


def write_overrides(node: NodeSpec, overrides: dict, directory: Path) -> Path:
    """A parameter file setting `overrides` for this node only."""
    import yaml

    path = Path(directory) / f"{node.name}.overrides.yaml"
    path.write_text(yaml.safe_dump({node.name: {"ros__parameters": dict(overrides)}}))
    return path
