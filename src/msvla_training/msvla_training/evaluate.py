"""msvla-eval: offline and closed-loop evaluation of the spatial Franka grasp VLA checkpoint.

Offline: the test split of a folder of recorded episode bags (the training config's split, so no
training episode is seen), per input ablation and under RGB noise and depth dropout. Closed loop:
the node graph of each variant (RGB-D, RGB only) grasping in the simulator on held-out seeds.
Writes <output>/report.md (tables and plots) and <output>/results.json.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from msvla_bringup.closed_loop import (ClosedLoopError, ClosedLoopSession, new_result, run_episodes, run_guarded,
                                      start_evaluation, write_results)
from msvla_bringup.graph import load_graph
from msvla_bringup.runner import NodeProcessDied
from msvla_core.config import ConfigError, from_dict, load_config, load_yaml
from msvla_core.data.bags import BagError, BagSpec
from msvla_core.models.checkpoint import CheckpointError, load_pretrained
from msvla_core.models.language import SentenceEncoder

from . import offline_metrics as om
from .dataset import load_grasp_data, make_cache, shape_in, split_bags
from .report import write_report


@dataclass
class OfflineConfig:
    training_config: str = "config/training/franka_grasp.yaml"  # split and split_seed of the test split
    bag_spec: str = "config/training/bags/franka_grasp.yaml"
    calibration: str = "config/franka/calibration.yaml"
    cache_dir: str = ""  # empty: <output>/cache
    label: str = "grasp"
    batch_size: int = 32
    ablations: list[str] = field(default_factory=lambda: ["rgbd", "rgb", "depth"])
    success_position_cm: float = 2.0
    success_rotation_deg: float = 15.0
    rgb_noise_sigmas: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 20.0, 40.0])
    depth_dropout: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.25, 0.5])
    noise_max_samples: int = 500
    noise_seed: int = 0

    def __post_init__(self):
        unknown = sorted(set(self.ablations) - set(om.ABLATIONS))
        if unknown or not self.ablations:
            raise ValueError(f"ablations {unknown} are unknown; expected some of {sorted(om.ABLATIONS)}")
        if self.batch_size < 1 or self.noise_max_samples < 0:
            raise ValueError("batch_size must be >= 1 and noise_max_samples >= 0")
        if any(s < 0 for s in self.rgb_noise_sigmas) or any(not 0 <= f <= 1 for f in self.depth_dropout):
            raise ValueError("rgb_noise_sigmas must be >= 0 and depth_dropout fractions in [0, 1]")


@dataclass
class EpisodeSplit:
    """The keys of a training config that define its episode split."""

    split: tuple[float, float, float]  # train / val / test fractions
    split_seed: int


def training_split(path: str | Path) -> EpisodeSplit:
    """The training run's split, so the test split is exactly the episodes it never saw."""
    data = load_yaml(path)
    return from_dict(EpisodeSplit, {k: data[k] for k in ("split", "split_seed") if k in data}, where=str(path))


@dataclass
class VariantConfig:
    graph: str  # graph YAML file
    overrides: dict[str, dict] = field(default_factory=dict)  # per node, on top of the shared ones


@dataclass
class ClosedLoopConfig:
    episodes: int = 50
    seed_start: int = 900000
    timeout_s: float = 15.0
    startup_timeout_s: float = 120.0
    model_nodes: list[str] = field(default_factory=lambda: ["rgb_encoder", "depth_encoder", "fusion_node", "vla_node"])
    overrides: dict[str, dict] = field(default_factory=dict)  # per node, every variant whose graph has it
    variants: dict[str, VariantConfig] = field(default_factory=dict)

    def __post_init__(self):
        if self.episodes < 1 or self.seed_start < 0 or self.timeout_s <= 0:
            raise ValueError("episodes must be >= 1, seed_start >= 0 and timeout_s > 0")


@dataclass
class EvalConfig:
    checkpoint: str = "models/franka_rgbd"
    bags: str = "bags/franka"
    output: str = "runs/eval/franka_rgbd"
    threads: int = 2
    language_model_dir: str = ""
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)


def run_offline(model, language, cfg: EvalConfig, output: Path, log=print) -> dict:
    off = cfg.offline
    started = time.perf_counter()
    train_cfg = training_split(off.training_config)
    _, _, test_bags = split_bags(cfg.bags, train_cfg.split, train_cfg.split_seed)
    spec = BagSpec.load(off.bag_spec)
    report = Counter()
    cache = make_cache(model, spec, off.cache_dir or output / "cache", off.calibration, off.label, report)
    data, used = load_grasp_data(test_bags, spec, cache, report, log=log)
    if data is None:
        raise SystemExit(f"no labelled samples in the test split of {cfg.bags} ({len(test_bags)} bags, "
                         f"split {list(train_cfg.split)} seed {train_cfg.split_seed})")
    n = len(data["texts"])
    loaded = time.perf_counter()
    log(f"[offline] test split: {len(used)}/{len(test_bags)} bags, {n} samples")
    shapes = [shape_in(t) for t in data["texts"]]
    embeddings = language.encode(data["texts"])
    result = {"test_bags": len(test_bags), "bags_used": used, "bad_bags": report["bad_bags"], "samples": n,
              "split": {"fractions": list(train_cfg.split), "seed": train_cfg.split_seed},
              "thresholds": {"position_cm": off.success_position_cm, "rotation_deg": off.success_rotation_deg},
              "ablations": {}, "errors": {}}
    forward_s = 0.0
    for ablation in off.ablations:
        pred = om.predict(model, embeddings, om.ablation_inputs(data, ablation), off.batch_size)
        forward_s += pred["seconds"]
        summary, errors = om.evaluate_predictions(data, pred, shapes, off.success_position_cm,
                                                  off.success_rotation_deg)
        result["ablations"][ablation] = summary
        result["errors"][ablation] = {k: v.round(4).tolist() for k, v in errors.items()}
        log(f"[offline] {ablation}: success {summary['successes']}/{n}, median position "
            f"{summary['position_cm']['median']:.2f} cm, rotation {summary['rotation_deg']['median']:.1f} deg")

    scored = time.perf_counter()
    m = min(n, off.noise_max_samples)
    subset = {k: v[:m] for k, v in data.items()}
    noise = {"samples": m, "rgb_noise": [], "depth_dropout": []}
    for i, sigma in enumerate(off.rgb_noise_sigmas if m else []):
        generator = torch.Generator().manual_seed(off.noise_seed + i)
        noisy = {**subset, "rgb": om.noisy_rgb(subset["rgb"], sigma, generator)}
        noise["rgb_noise"].append({"sigma": sigma, **{a: om.noise_cell(model, language, noisy, a, off)
                                                      for a in ("rgbd", "rgb") if a in off.ablations}})
    raw = om.raw_labelled_samples([Path(cfg.bags) / name for name in used], spec, off.label, m) if m else []
    for i, fraction in enumerate(off.depth_dropout if m else []):
        holed = om.dropout_data(model, raw, off, fraction, off.noise_seed + i)
        row = {"fraction": fraction, "dropped_samples": holed["dropped"]}
        if holed["texts"]:
            row.update({a: om.noise_cell(model, language, holed, a, off)
                        for a in ("rgbd", "depth") if a in off.ablations})
        noise["depth_dropout"].append(row)
    result["noise"] = noise
    total = time.perf_counter() - started
    result["timing"] = {"forward_s_per_100_samples": 100 * forward_s / (n * len(off.ablations)),
                        "total_s": total, "total_s_per_100_samples": 100 * total / n,
                        "load_s": loaded - started, "ablations_s": scored - loaded,
                        "noise_s": time.perf_counter() - scored}
    log(f"[offline] {total:.1f} s ({result['timing']['total_s_per_100_samples']:.1f} s per 100 samples, "
        f"forward {result['timing']['forward_s_per_100_samples']:.2f} s per 100 samples and ablation)")
    return result


def variant_overrides(cl: ClosedLoopConfig, name: str) -> dict[str, dict]:
    """Per-node parameters of one variant: the shared overrides of the nodes its graph has, then
    the variant's own (which must all name nodes of its graph)."""
    nodes = {n.name for n in load_graph(cl.variants[name].graph)[0].nodes}
    overrides = {node: dict(params) for node, params in cl.overrides.items() if node in nodes}
    for node, params in cl.variants[name].overrides.items():
        overrides.setdefault(node, {}).update(params)
    return overrides


def run_closed_loop_variants(cfg: EvalConfig, checkpoint: Path, variants: list[str], output: Path,
                             results: dict, log=print) -> None:
    """Fills results[variant] with a ClosedLoopResult, episode by episode; NodeProcessDied and
    timeouts propagate, leaving the episodes finished so far in place."""
    cl = cfg.closed_loop
    seeds = list(range(cl.seed_start, cl.seed_start + cl.episodes))
    for name in variants:
        variant = cl.variants[name]
        overrides = variant_overrides(cl, name)
        log(f"[closed-loop] {name}: {variant.graph}, {len(seeds)} episodes from seed {seeds[0]}")

        def progress(i, row, name=name):
            log(f"[closed-loop] {name} {i + 1}/{len(seeds)} seed {row.seed} {row.instruction!r}: {row.outcome} "
                f"(lifted {row.lifted or '-'}, {row.seconds:.1f} s)")

        with ClosedLoopSession(variant.graph, checkpoint, output / "logs" / name, overrides, cl.model_nodes,
                               cl.startup_timeout_s) as session:
            for ignored in session.ignored_overrides:
                log(f"[closed-loop] WARNING {name}: {ignored} is not a parameter of that node; "
                    "the override has no effect")
            results[name] = new_result(session)
            run_episodes(session, seeds, cl.timeout_s, progress, results[name])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/eval/franka_grasp.yaml", help="EvalConfig YAML")
    parser.add_argument("--checkpoint", help="checkpoint directory (default: the config's)")
    parser.add_argument("--bags", help="folder of episode bags (default: the config's)")
    parser.add_argument("--output", help="report folder (default: the config's)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--offline-only", action="store_true", help="skip the closed-loop evaluation")
    only.add_argument("--closed-loop-only", action="store_true", help="skip the offline evaluation")
    parser.add_argument("--episodes", type=int, help="closed-loop episodes per variant")
    parser.add_argument("--variants", help="comma-separated closed-loop variants (default: all in the config)")
    parser.add_argument("--seed-start", type=int, help="first closed-loop scene seed (default: the config's; "
                                                       "the held-out scenes start at 900000)")
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    try:
        cfg = load_config(EvalConfig, args.config)
        for key in ("checkpoint", "bags", "output"):
            if getattr(args, key):
                setattr(cfg, key, getattr(args, key))
        if args.episodes is not None:
            cfg.closed_loop.episodes = args.episodes
        if args.seed_start is not None:
            cfg.closed_loop.seed_start = args.seed_start
        cfg.closed_loop.__post_init__()
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants \
        else list(cfg.closed_loop.variants)
    unknown = [v for v in variants if v not in cfg.closed_loop.variants]
    if unknown:
        parser.error(f"--variants {unknown} are not in the config (variants: {sorted(cfg.closed_loop.variants)})")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(max(1, cfg.threads))
    output = Path(cfg.output)
    results = start_evaluation("msvla-eval", argv, cfg.checkpoint, output, cfg)
    if results is None:
        return 2
    checkpoint = Path(results["checkpoint"])
    closed_loop = {}

    def work() -> None:
        if not args.closed_loop_only:
            model = load_pretrained(checkpoint)
            language = SentenceEncoder(cfg.language_model_dir or None, cache_size=4096)
            if language.dim != model.config.language_dim:
                raise SystemExit(f"language encoder gives {language.dim}-d embeddings, the checkpoint needs "
                                 f"{model.config.language_dim}")
            results["offline"] = run_offline(model, language, cfg, output)
        if not args.offline_only:
            run_closed_loop_variants(cfg, checkpoint, variants, output, closed_loop)

    code = run_guarded(results, work, (NodeProcessDied, ClosedLoopError, TimeoutError, BagError, CheckpointError,
                                       ConfigError, FileNotFoundError))
    if closed_loop:
        results["closed_loop"] = {name: r.to_dict() for name, r in closed_loop.items()}
    write_results(results, output, write_report)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
