"""Closed-loop evaluation of a checkpoint in a running graph: the simulator executes the shielded
grasps the graph produces for held-out scene seeds, and the outcomes are tallied.

Every model node of the graph is pointed at the checkpoint under test through its `checkpoint`
parameter; any other per-node parameter (e.g. the simulator's scene split) is passed through from
the caller unchanged. A node that dies ends the run with NodeProcessDied and the node's log tail.
GraphSession (start once, drive many episodes, stop) is shared with the vehicle evaluation
(vehicle_episodes.VehicleSession); ClosedLoopSession is the Franka grasp one.
"""
from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rcl_interfaces.srv import ListParameters

from msvla_core.models.checkpoint import CheckpointError, verify

from .episodes import EpisodeDriver, SimDriver
from .graph import GraphSpec, load_graph
from .runner import GraphRunner
from .stats import wilson_interval  # also imported from here by msvla_training

# Nodes of the Franka graphs that load a component of the checkpoint (parameter `checkpoint`).
MODEL_NODES = ("rgb_encoder", "depth_encoder", "fusion_node", "vla_node")


class ClosedLoopError(RuntimeError):
    """The evaluation is wired wrongly: bad overrides, or grasps from another checkpoint."""


def run_guarded(results: dict, work, errors: tuple[type[BaseException], ...]) -> int:
    """Run `work()`; an expected failure (`errors`) or Ctrl-C is recorded in results["error"] so the
    report of what finished is still written. Returns the exit code: 0, 1 (failure) or 130."""
    try:
        work()
    except errors as exc:
        # NodeProcessDied's message ends with the dead node's log tail.
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"ERROR: {results['error']}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        results["error"] = "interrupted (Ctrl-C)"
        print("ERROR: interrupted; writing the report of what finished", file=sys.stderr)
        return 130
    return 0


def write_results(results: dict, output: Path, write_report) -> None:
    """results.json and the Markdown report (`write_report(results, output) -> path`) in `output`."""
    (output / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report = write_report(results, output)
    print(f"[report] {report} and {output / 'results.json'}", flush=True)


def start_evaluation(tool: str, argv, checkpoint: str | Path, output: str | Path, config) -> dict | None:
    """The shared start of an evaluation CLI: prints the command, verifies the checkpoint and creates
    the output folder. Returns the results skeleton (command, resolved checkpoint, model_id, date,
    config) or None, after printing why, when the checkpoint does not verify."""
    command = " ".join([tool] + (sys.argv[1:] if argv is None else list(argv)))
    print(f"[setup] {command}", flush=True)
    checkpoint = Path(checkpoint).expanduser().resolve()
    try:
        model_id = verify(checkpoint)
    except CheckpointError as exc:
        print(f"ERROR: checkpoint {checkpoint}: {exc}", file=sys.stderr)
        return None
    Path(output).mkdir(parents=True, exist_ok=True)
    return {"command": command, "checkpoint": str(checkpoint), "model_id": model_id,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "config": asdict(config)}


@dataclass
class EpisodeRow:
    seed: int
    instruction: str
    target: str | None
    lifted: list[str]
    success: bool
    outcome: str  # "success", "failure" or "timeout" (no grasp executed in time)
    latency_ms: float | None  # camera stamp -> first shielded grasp for the instruction
    seconds: float
    shield_reset: str = ""  # what the shield had latched before the episode (empty: nothing)


@dataclass
class ClosedLoopResult:
    graph: str
    checkpoint: str
    model_id: str
    episodes: list[EpisodeRow] = field(default_factory=list)
    startup_s: float = 0.0
    ignored_overrides: list[str] = field(default_factory=list)  # parameters no node declares

    def summary(self) -> dict:
        n = len(self.episodes)
        wins = sum(e.success for e in self.episodes)
        latencies = [e.latency_ms for e in self.episodes if e.latency_ms is not None]
        seconds = [e.seconds for e in self.episodes]
        lo, hi = wilson_interval(wins, n)
        return {"episodes": n, "successes": wins, "success_rate": wins / n if n else None,
                "wilson95": [lo, hi], "timeouts": sum(e.outcome == "timeout" for e in self.episodes),
                "latency_ms_median": float(np.median(latencies)) if latencies else None,
                "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else None,
                "seconds_per_episode": float(np.mean(seconds)) if seconds else None,
                "shield_resets": sum(bool(e.shield_reset) for e in self.episodes),
                "startup_s": self.startup_s}

    def to_dict(self) -> dict:
        return {"graph": self.graph, "checkpoint": self.checkpoint, "model_id": self.model_id,
                "summary": self.summary(), "ignored_overrides": self.ignored_overrides,
                "episodes": [asdict(e) for e in self.episodes]}


def graph_overrides(spec: GraphSpec, checkpoint: Path, overrides: dict[str, dict] | None = None,
                    model_nodes=MODEL_NODES) -> dict[str, dict]:
    """Per-node parameter overrides: `checkpoint` for the model nodes present in the graph, plus
    `overrides`. The checkpoint under test is set here only, so overriding it per node is refused."""
    names = {n.name for n in spec.nodes}
    out = {name: {"checkpoint": str(checkpoint)} for name in model_nodes if name in names}
    if not out:
        raise ClosedLoopError(f"graph {spec.name} has none of the model nodes {list(model_nodes)}")
    for node, params in (overrides or {}).items():
        if node not in names:
            raise ClosedLoopError(f"parameter overrides for node {node!r}, which graph {spec.name} does not have "
                             f"(nodes: {sorted(names)})")
        if not isinstance(params, dict):
            raise ClosedLoopError(f"overrides.{node} must be a mapping of parameter names to values, got {params!r}")
        if "checkpoint" in params and node in out:
            raise ClosedLoopError(f"overrides.{node}.checkpoint: the checkpoint under test is set for every model "
                             f"node; pass it as the checkpoint instead")
        out.setdefault(node, {}).update(params)
    return out


class GraphSession:
    """A running graph plus an episode driver; use as a context manager (stops the graph on exit).

    The graph starts once and serves many episodes: each node process imports torch and loads its
    component (seconds), which would dominate a per-episode start. With a `checkpoint`, every model
    node loads it (graph_overrides) and a broken one fails here, before any process starts; without,
    the nodes load the checkpoint their parameter files name. Subclasses provide the driver
    (`make_driver`, a SimDriver with `wait_for_graph(timeout_s, alive_check)`) and the episodes."""

    def __init__(self, spec: GraphSpec, base: Path, checkpoint: str | Path | None, log_dir: str | Path,
                 overrides: dict[str, dict] | None = None, model_nodes=MODEL_NODES,
                 startup_timeout_s: float = 120.0, name: str = "msvla_closed_loop"):
        self.checkpoint = None if checkpoint is None else Path(checkpoint).expanduser().resolve()
        self.model_id = "" if self.checkpoint is None else verify(self.checkpoint)
        self.spec = spec
        self.overrides = (dict(overrides or {}) if self.checkpoint is None
                          else graph_overrides(spec, self.checkpoint, overrides, model_nodes))
        self.runner = GraphRunner(spec, base, Path(log_dir), simulation=True, overrides=self.overrides)
        self.startup_timeout_s, self.name = startup_timeout_s, name
        self.driver: SimDriver | None = None
        self._owns_rclpy = False
        self.startup_s = 0.0
        self.ignored_overrides: list[str] = []

    def make_driver(self) -> SimDriver:
        raise NotImplementedError

    def __enter__(self):
        started = time.monotonic()
        self._owns_rclpy = not rclpy.ok()
        if self._owns_rclpy:
            rclpy.init()
        try:
            self.driver = self.make_driver()
            self.runner.start()
            self.driver.wait_for_graph(self.startup_timeout_s, alive_check=self.runner.check)
            self.ignored_overrides = self._undeclared_overrides()
        except BaseException:
            self.close()
            raise
        self.startup_s = time.monotonic() - started
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> dict[str, int]:
        codes = self.runner.stop()
        if self.driver is not None:
            self.driver.destroy_node()
            self.driver = None
        if self._owns_rclpy:
            rclpy.try_shutdown()
            self._owns_rclpy = False
        return codes

    def _undeclared_overrides(self, timeout_s: float = 10.0) -> list[str]:
        """`node.parameter` of every override the node did not declare: ROS ignores those silently,
        so an evaluation would run with the node's default instead."""
        ignored = []
        for node, params in self.overrides.items():
            client = self.driver.create_client(ListParameters, f"/{node}/list_parameters")
            try:
                future = None
                if client.wait_for_service(timeout_sec=timeout_s):
                    future = client.call_async(ListParameters.Request())
                    self.driver.spin_until(future.done, timeout_s, self.runner.check)
                if future is None or not future.done():
                    # advisory only: a busy node must not fail the evaluation it is part of
                    self.driver.get_logger().warning(f"could not list the parameters of {node} within "
                                                     f"{timeout_s} s; its overrides are not verified")
                    continue
                declared = set(future.result().result.names)
                ignored += [f"{node}.{name}" for name in params if name not in declared]
            finally:
                self.driver.destroy_client(client)
        return ignored


class ClosedLoopSession(GraphSession):
    """The Franka grasp graph of `graph` (a YAML path or name) with `checkpoint`, serving grasp episodes."""

    def __init__(self, graph: str | Path, checkpoint: str | Path, log_dir: str | Path,
                 overrides: dict[str, dict] | None = None, model_nodes=MODEL_NODES,
                 startup_timeout_s: float = 120.0, name: str = "msvla_closed_loop"):
        spec, base = load_graph(str(graph))
        super().__init__(spec, base, checkpoint, log_dir, overrides, model_nodes, startup_timeout_s, name)
        self.graph = str(graph)

    def make_driver(self) -> EpisodeDriver:
        return EpisodeDriver(self.name)

    def run_episode(self, seed: int, timeout_s: float = 40.0) -> EpisodeRow:
        """One episode; its instruction depends on the seed only, so every graph variant gets the
        same task for the same seed."""
        started = time.monotonic()
        n_grasps = len(self.driver.seen.grasps)
        result = self.driver.run_episode(seed, timeout_s, self.runner.check, random.Random(seed))
        foreign = {g.model_id for g, _ in self.driver.seen.grasps[n_grasps:]} - {self.model_id}
        if foreign:
            raise ClosedLoopError(f"grasps came from checkpoint(s) {sorted(foreign)}, not {self.model_id} "
                                  f"({self.checkpoint}): a node did not load the checkpoint under test")
        outcome = result.outcome
        status = "timeout" if outcome is None else ("success" if result.success else "failure")
        return EpisodeRow(seed=seed, instruction=result.instruction, target=result.target,
                          lifted=list(outcome.get("lifted", [])) if outcome else [], success=result.success,
                          outcome=status, latency_ms=result.first_grasp_latency_ms,
                          seconds=time.monotonic() - started, shield_reset=result.shield_reset)


def new_result(session: ClosedLoopSession) -> ClosedLoopResult:
    """An empty result of a started session (graph, checkpoint, start-up time, ignored overrides)."""
    return ClosedLoopResult(session.graph, str(session.checkpoint), session.model_id,
                            startup_s=session.startup_s, ignored_overrides=list(session.ignored_overrides))


def run_episodes(session: ClosedLoopSession, seeds, timeout_s: float = 40.0, on_episode=None,
                 result: ClosedLoopResult | None = None) -> ClosedLoopResult:
    """One episode per seed in a started session; `on_episode(index, row)` follows each (progress).
    Rows are appended to `result` (a new one by default) as they finish, so a caller that passes
    its own keeps the finished episodes when a later one raises."""
    result = new_result(session) if result is None else result
    for i, seed in enumerate(seeds):
        row = session.run_episode(int(seed), timeout_s)
        result.episodes.append(row)
        if on_episode is not None:
            on_episode(i, row)
    return result


def run_closed_loop(graph: str | Path, checkpoint: str | Path, seeds, log_dir: str | Path, *,
                    overrides: dict[str, dict] | None = None, model_nodes=MODEL_NODES, timeout_s: float = 40.0,
                    startup_timeout_s: float = 120.0, on_episode=None) -> ClosedLoopResult:
    """Start `graph` with `checkpoint`, run one episode per seed, stop the graph.

    Raises CheckpointError for a broken checkpoint (before starting anything), ClosedLoopError for
    overrides that do not fit the graph, and NodeProcessDied (with the node's log tail) when a node exits.
    """
    with ClosedLoopSession(graph, checkpoint, log_dir, overrides, model_nodes, startup_timeout_s) as session:
        return run_episodes(session, seeds, timeout_s, on_episode)
