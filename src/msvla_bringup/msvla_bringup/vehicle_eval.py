"""Closed-loop evaluation of the vehicle graph: python -m msvla_bringup.vehicle_eval (make eval-vehicle).

Every variant of the graph (shield on, shield off, one sensor ablated, ...) drives every suite of
held-out scenes (route following with the lane clear, stopping before an obstacle in the lane) in
the simulator, one graph start per variant and suite (the suites differ in start-up parameters of
the simulator). Writes <output>/report.md and <output>/results.json; a run that fails part-way
still writes what finished.

  python -m msvla_bringup.vehicle_eval --config config/eval/vehicle.yaml [--episodes 3]
      [--variants shield_on,shield_off] [--suites route] [--checkpoint DIR] [--output DIR]
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from msvla_core.config import ConfigError, load_config
from msvla_core.models.checkpoint import CheckpointError
from msvla_sim.vehicle_expert import INSTRUCTION_KINDS

from .closed_loop import ClosedLoopError, run_guarded, start_evaluation, write_results
from .graph import GraphSpec, load_graph
from .graph_variants import GraphVariantError, ablate, ablation_effects, encoder_modalities, without_shield
from .runner import NodeProcessDied
from .vehicle_metrics import Criteria, DriveRow, summarize
from .vehicle_episodes import VehicleSession
from .vehicle_report import write_report

# Seeds below this are the recorders' (training data); evaluation scenes must be above it.
FIRST_HELDOUT_SEED = 900000


@dataclass
class SuiteConfig:
    kinds: list[str]                     # instruction kinds, drawn per seed
    episodes: int = 20
    seed_start: int = FIRST_HELDOUT_SEED
    timeout_s: float = 45.0
    standstill_s: float = 10.0           # standing still this long (simulated s) ends the episode
    overrides: dict[str, dict] = field(default_factory=dict)  # per node, e.g. vehicle_sim.in_lane_fraction

    def __post_init__(self):
        unknown = sorted(set(self.kinds) - set(INSTRUCTION_KINDS))
        if not self.kinds or unknown:
            raise ValueError(f"kinds {self.kinds}: expected a non-empty subset of {list(INSTRUCTION_KINDS)}")
        if self.episodes < 1 or self.timeout_s <= 0 or self.standstill_s <= 0:
            raise ValueError("episodes must be >= 1, timeout_s and standstill_s > 0")
        if self.seed_start < FIRST_HELDOUT_SEED:
            raise ValueError(f"seed_start {self.seed_start}: seeds below {FIRST_HELDOUT_SEED} are recording "
                             f"(training) seeds; evaluate on held-out seeds")

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed_start, self.seed_start + self.episodes))


@dataclass
class VariantConfig:
    shield: bool = True                  # false: no safety shield (simulation only, graph_variants.without_shield)
    ablate: list[str] = field(default_factory=list)  # modalities whose encoder nodes are left out
    overrides: dict[str, dict] = field(default_factory=dict)  # per node, on top of the shared and suite ones


@dataclass
class SensorAblations:
    """A variant no_<modality> per encoder of the graph, found in the graph (graph_variants)."""

    enabled: bool = True
    overrides: dict[str, dict[str, dict]] = field(default_factory=dict)  # modality -> node -> parameters


@dataclass
class VehicleEvalConfig:
    checkpoint: str = "models/vehicle_multisensor"
    graph: str = "config/graphs/vehicle_multisensor.yaml"
    output: str = "runs/eval/vehicle_multisensor"
    startup_timeout_s: float = 120.0
    strict_overrides: bool = True        # an override its node does not declare stops the run
    criteria: Criteria = field(default_factory=Criteria)
    overrides: dict[str, dict] = field(default_factory=dict)  # per node, for every variant whose graph has it
    suites: dict[str, SuiteConfig] = field(default_factory=dict)
    variants: dict[str, VariantConfig] = field(default_factory=lambda: {"shield_on": VariantConfig()})
    sensor_ablations: SensorAblations = field(default_factory=SensorAblations)

    def __post_init__(self):
        if not self.suites or not self.variants:
            raise ValueError("need at least one suite and one variant")


def all_variants(cfg: VehicleEvalConfig) -> dict[str, VariantConfig]:
    """The configured variants, then (if enabled) one sensor ablation per encoder modality of the graph."""
    variants = dict(cfg.variants)
    if not cfg.sensor_ablations.enabled:
        return variants
    spec, base = load_graph(cfg.graph)
    modalities = list(dict.fromkeys(encoder_modalities(spec, base).values()))
    unknown = sorted(set(cfg.sensor_ablations.overrides) - set(modalities))
    if unknown:
        raise GraphVariantError(f"sensor_ablations.overrides names {unknown}, which graph {spec.name} has no "
                                f"encoder for (encoders: {modalities})")
    for modality in modalities:
        name = f"no_{modality}"
        if name in variants:
            raise GraphVariantError(f"variant {name} is configured and also generated by sensor_ablations")
        variants[name] = VariantConfig(ablate=[modality], overrides=cfg.sensor_ablations.overrides.get(modality, {}))
    return variants


def variant_graph(cfg: VehicleEvalConfig, variant: VariantConfig) -> tuple[GraphSpec, Path]:
    spec, base = load_graph(cfg.graph)
    spec = ablate(spec, base, variant.ablate)
    return (spec if variant.shield else without_shield(spec, simulation=True)), base


def merged_overrides(spec: GraphSpec, *layers: dict[str, dict]) -> dict[str, dict]:
    """Per-node parameters, later layers winning. Layers before the last apply to the nodes the
    graph has (shared settings, e.g. for a shield the variant removed); the last (the variant's own)
    must name nodes of the graph."""
    names = {n.name for n in spec.nodes}
    out: dict[str, dict] = {}
    for i, layer in enumerate(layers):
        for node, params in layer.items():
            if node not in names:
                if i == len(layers) - 1:
                    raise ClosedLoopError(f"overrides for node {node!r}, which graph {spec.name} does not have "
                                          f"(nodes: {sorted(names)})")
                continue
            out.setdefault(node, {}).update(params)
    return out


def run_suite(cfg: VehicleEvalConfig, checkpoint: Path, name: str, variant: VariantConfig, suite_name: str,
              suite: SuiteConfig, output: Path, record: dict, log=None) -> None:
    """One graph session of a variant driving a suite; rows land in record["rows"] as they finish."""
    log = log or (lambda text: print(text, flush=True))
    spec, base = variant_graph(cfg, variant)
    overrides = merged_overrides(spec, cfg.overrides, suite.overrides, variant.overrides)
    effects = ablation_effects(spec, base, variant.ablate, overrides)
    record.update(graph=spec.name, overrides=overrides, notes=effects.notes, rows=[])
    for note in effects.notes:
        log(f"[{name}/{suite_name}] note: {note}")
    with VehicleSession(spec, base, checkpoint, output / "logs" / f"{name}-{suite_name}", overrides,
                        forwarded=not variant.shield, shield_stopped_by_design=effects.shield_stops,
                        criteria=cfg.criteria, startup_timeout_s=cfg.startup_timeout_s) as session:
        record.update(startup_s=session.startup_s, ignored_overrides=session.ignored_overrides)
        if session.ignored_overrides:
            message = (f"{session.ignored_overrides} are not parameters of those nodes, so they ran with their "
                       f"defaults")
            if cfg.strict_overrides:
                raise ClosedLoopError(f"{name}/{suite_name}: {message} (strict_overrides: true)")
            log(f"[{name}/{suite_name}] WARNING {message}")
        log(f"[{name}/{suite_name}] graph {spec.name} up in {session.startup_s:.1f} s; "
            f"{len(suite.seeds)} episodes from seed {suite.seed_start}")
        for i, seed in enumerate(suite.seeds):
            row = session.run_episode(seed, suite.kinds, suite.timeout_s, suite.standstill_s)
            record["rows"].append(row)
            m = row.metrics
            log(f"[{name}/{suite_name}] {i + 1}/{len(suite.seeds)} seed {seed} {row.instruction!r}: {row.end}, "
                f"route {100 * m.route_fraction:.0f} %, collision {m.collision}, compliant {m.compliant}, "
                f"{row.seconds:.1f} s")
        # stopped here for the exit codes: a node that does not shut down cleanly is worth a line in the report
        record["unclean_exits"] = {node: code for node, code in session.close().items() if code != 0}


def finish(record: dict) -> dict:
    """A suite record as JSON: rows as dicts, summaries over all rows and per instruction kind."""
    rows: list[DriveRow] = record.get("rows", [])
    out = {k: v for k, v in record.items() if k != "rows"}
    out["summary"] = summarize(rows)
    out["by_kind"] = {kind: summarize([r for r in rows if r.kind == kind])
                      for kind in INSTRUCTION_KINDS if any(r.kind == kind for r in rows)}
    out["episodes"] = [asdict(r) for r in rows]
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/eval/vehicle.yaml", help="VehicleEvalConfig YAML")
    parser.add_argument("--checkpoint", help="checkpoint directory (default: the config's)")
    parser.add_argument("--output", help="report folder (default: the config's)")
    parser.add_argument("--episodes", type=int, help="episodes per suite and variant (default: the config's)")
    parser.add_argument("--variants", help="comma-separated variants (default: all in the config)")
    parser.add_argument("--suites", help="comma-separated suites (default: all in the config)")
    return parser, parser.parse_args(argv)


def _select(parser, text: str | None, known: dict, what: str) -> list[str]:
    chosen = [v.strip() for v in text.split(",") if v.strip()] if text else list(known)
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        parser.error(f"--{what} {unknown or chosen}: expected some of {sorted(known)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    try:
        cfg = load_config(VehicleEvalConfig, args.config)
        for key in ("checkpoint", "output"):
            if getattr(args, key):
                setattr(cfg, key, getattr(args, key))
        if args.episodes is not None:
            for suite in cfg.suites.values():
                suite.episodes = args.episodes
                suite.__post_init__()
        known_variants = all_variants(cfg)
    except (ConfigError, ValueError, FileNotFoundError) as exc:  # GraphVariantError is a ValueError
        parser.error(str(exc))
    variants = _select(parser, args.variants, known_variants, "variants")
    suites = _select(parser, args.suites, cfg.suites, "suites")
    try:  # a variant that does not fit the graph fails now, not after the variants before it ran
        for name in variants:
            spec, _ = variant_graph(cfg, known_variants[name])
            for suite in suites:
                merged_overrides(spec, cfg.overrides, cfg.suites[suite].overrides, known_variants[name].overrides)
    except (ValueError, ClosedLoopError) as exc:
        parser.error(f"variant {name}: {exc}")
    output = Path(cfg.output)
    results = start_evaluation("python -m msvla_bringup.vehicle_eval", argv, cfg.checkpoint, output, cfg)
    if results is None:
        return 2
    checkpoint = Path(results["checkpoint"])
    results.update({"variant_configs": {name: asdict(known_variants[name]) for name in variants}, "variants": {}})
    records: dict[str, dict[str, dict]] = {}
    started = time.monotonic()

    def work() -> None:
        for name in variants:
            for suite_name in suites:
                record = records.setdefault(name, {}).setdefault(suite_name, {})
                run_suite(cfg, checkpoint, name, known_variants[name], suite_name, cfg.suites[suite_name],
                          output, record)

    code = run_guarded(results, work, (NodeProcessDied, ClosedLoopError, GraphVariantError, TimeoutError,
                                       CheckpointError, FileNotFoundError))
    results["wall_s"] = time.monotonic() - started
    results["variants"] = {name: {suite: finish(rec) for suite, rec in suites_.items() if "rows" in rec}
                           for name, suites_ in records.items()}
    write_results(results, output, write_report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
