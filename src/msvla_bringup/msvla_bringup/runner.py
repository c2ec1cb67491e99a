"""Start a graph's executables as separate processes, watch them, and stop them cleanly.

For machines that have the ROS 2 wheels but not `ros2 launch`; the arguments are the ones the
launch files pass (msvla_bringup.graph.ros_arguments).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .graph import (GraphSpec, NodeSpec, actuation_overrides, container_arguments, merge_overrides,
                    process_groups, ros_arguments, write_overrides)

CONTAINER = NodeSpec(name="node_container", package="msvla_bringup", executable="node_container")


class NodeProcessDied(RuntimeError):
    """A node of the graph exited while the graph was supposed to be running."""


def executable_path(node: NodeSpec) -> Path:
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix(node.package)) / "lib" / node.package / node.executable
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"executable {node.executable} of package {node.package} not found at {path}")
    return path


def default_environment(base_config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(base_config / "fastdds.xml"))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    return env


@dataclass
class RunningNode:
    """One process of the graph: a node, or the nodes composed in a node_container."""
    name: str  # the node's name, or the process name of composed nodes
    specs: list[NodeSpec]
    command: list[str]
    process: subprocess.Popen
    log_path: Path

    @property
    def describe(self) -> str:
        if len(self.specs) == 1:
            return f"node {self.name} ({self.specs[0].package}/{self.specs[0].executable})"
        return f"process {self.name} (node_container of {', '.join(n.name for n in self.specs)})"


class GraphRunner:
    def __init__(self, spec: GraphSpec, config_base: Path, log_dir: Path, simulation: bool = True,
                 overrides: dict[str, dict] | None = None, env: dict[str, str] | None = None,
                 exclude: tuple[str, ...] = (), actuation: bool | None = None, composed: bool = True):
        """`actuation` (default: as `simulation`) enables the actuator nodes' commands; `overrides`
        win over it. `composed`: nodes that share a process name in the graph run in one process;
        False starts every node as a process of its own."""
        self.spec = spec
        self.base = config_base
        self.log_dir = Path(log_dir)
        self.nodes = [n for n in spec.selected(simulation) if n.name not in exclude]
        unknown = set(overrides or {}) - {n.name for n in spec.nodes}
        if unknown:
            raise ValueError(f"parameter overrides for nodes not in graph {spec.name}: {sorted(unknown)}")
        enabled = simulation if actuation is None else actuation
        self.overrides = merge_overrides(actuation_overrides(spec, enabled), overrides or {})
        self.env = env or default_environment(config_base)
        self.groups = process_groups(self.nodes) if composed else [[n] for n in self.nodes]
        self.running: list[RunningNode] = []

    def commands(self) -> dict[str, list[str]]:
        """Process name -> command line (a node's name, or the process name of composed nodes)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        extra = {n.name: write_overrides(n, self.overrides[n.name], self.log_dir)
                 for n in self.nodes if n.name in self.overrides}
        commands = {}
        for group in self.groups:
            if len(group) == 1:
                n = group[0]
                commands[n.name] = [str(executable_path(n)), *ros_arguments(n, self.base, extra.get(n.name))]
            else:
                commands[group[0].process] = [str(executable_path(CONTAINER)),
                                              *container_arguments(group, self.base, extra)]
        return commands

    def start(self) -> "GraphRunner":
        for (name, cmd), group in zip(self.commands().items(), self.groups):
            self.running.append(self._spawn(name, group, cmd, "w"))
        return self

    def _spawn(self, name: str, specs: list[NodeSpec], cmd: list[str], log_mode: str) -> RunningNode:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, log_mode) as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                       start_new_session=True)
        return RunningNode(name, specs, cmd, process, log_path)

    def process_of(self, node: str) -> RunningNode:
        """The running process that hosts `node`."""
        found = next((r for r in self.running if any(n.name == node for n in r.specs)), None)
        if found is None:
            raise KeyError(f"node {node} is not running in graph {self.spec.name}")
        return found

    def restart(self, name: str, timeout_s: float = 10.0) -> None:
        """Stop one node's process cleanly and start it again with the same arguments (its log is
        appended to): the operator's remedy for a node that is alive but no longer receives its
        input. Composed nodes restart together with the others of their process."""
        old = self.process_of(name)
        index = self.running.index(old)
        _stop_processes([old], timeout_s)
        self.running[index] = self._spawn(old.name, old.specs, old.command, "a")

    def check(self) -> None:
        """Raise NodeProcessDied, with the end of its log, if any node has exited."""
        for r in self.running:
            code = r.process.poll()
            if code is not None:
                raise NodeProcessDied(f"{r.describe} exited with code {code}; last log lines:\n{tail(r.log_path)}")

    def sleep(self, seconds: float) -> None:
        """Wait while checking that every node stays alive."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def stop(self, timeout_s: float = 10.0) -> dict[str, int]:
        """SIGINT every node (clean shutdown); escalate to SIGTERM, then SIGKILL. Returns exit codes."""
        codes = _stop_processes(self.running, timeout_s)
        self.running = []
        return codes

    def __enter__(self) -> "GraphRunner":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop_processes(nodes: list[RunningNode], timeout_s: float) -> dict[str, int]:
    for r in nodes:
        if r.process.poll() is None:
            os.killpg(r.process.pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    codes = {}
    for r in nodes:
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and r.process.poll() is None:
                os.killpg(r.process.pid, sig)
            try:
                codes[r.name] = r.process.wait(timeout=max(0.5, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                deadline = time.monotonic() + 3.0
    return codes


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
