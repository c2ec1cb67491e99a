"""msvla-train: staged training of a VLA from recorded rosbag2 episodes.

`task: grasp` trains the spatial Franka grasp VLA (stages pretrain_rgb, pretrain_depth, align,
fusion, finetune, robustness); `task: drive` trains a multi-sensor vehicle VLA (model_config or
init_from) with control + trajectory supervision (stages drive_fusion, drive_finetune,
drive_robustness). The config lists stages in order, each with its own steps, learning rate,
batch size and parameters (see msvla_training.stages). Episodes are split by name, so an episode never feeds both training and validation;
bad bags are reported by name and skipped; preprocessed samples are cached per bag (dataset.py).

Outputs in <output>: the model (save_pretrained: config.json + component safetensors),
metrics.jsonl (one JSON object per log step and validation), plots/*.png, and train_state/ for
--resume. Under torchrun every rank trains on its shard of each batch; rank 0 writes the files.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from msvla_core.config import ConfigError, load_config, load_yaml
from msvla_core.data.bags import BagSpec
from msvla_core.models.checkpoint import load_pretrained, save_pretrained
from msvla_core.models.config import GraspModelConfig
from msvla_core.models.grasp_vla import GraspVLA
from msvla_core.models.language import SentenceEncoder
from msvla_core.models.vla import MultiSensorVLA

from .dataset import load_grasp_data, make_cache, split_bags
from .drive_data import load_drive_data, make_drive_cache
from .plots import read_metrics, write_plots
from .runtime import load_train_state, seed_everything, setup_runtime, write_digest
from .stages.config import StageConfig
from .stages.drive import validate_drive
from .stages.runner import Run, run_stage
from .stages.task import MODES
from .stages.validation import validate


@dataclass
class TrainConfig:
    bags: str  # folder whose sub-directories are episode bags
    output: str  # model checkpoint, metrics.jsonl, plots/ and train_state/ go here
    stages: list[StageConfig]  # run in this order
    task: str = "grasp"  # grasp | drive
    model_config: str = ""  # drive: VLA config YAML of a fresh model (when there is no init_from)
    frame_stride: int = 1  # drive: keep every n-th synchronised frame of a bag
    stationary_stride: int = 1  # drive: of the frames where the car stands, keep every n-th
    bag_spec: str = "config/training/bags/franka_grasp.yaml"
    calibration: str = "config/franka/calibration.yaml"  # camera_to_base when a bag has no extrinsics
    cache_dir: str = ""  # empty: <output>/../cache/<output name>
    init_from: str | None = None  # checkpoint directory to start from
    model: GraspModelConfig = field(default_factory=GraspModelConfig)  # architecture of a fresh model
    label: str = "grasp"  # label name in the bag spec
    language_model_dir: str = ""  # empty: packaged all-MiniLM-L6-v2
    seed: int = 0
    threads: int = 2  # torch CPU threads per process
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    log_every: int = 50
    eval_every: int = 0  # steps between validations inside a stage; 0: at stage ends only
    checkpoint_every: int = 200  # steps between train_state saves; 0: at stage ends only
    val_batch_size: int = 64
    max_val_samples: int = 1000  # validation subset (evenly spaced); 0: all
    # Input modes validated. grasp: rgbd, rgb, depth (default all three); drive: all and
    # no_<modality> (default all).
    val_modes: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.task not in ("grasp", "drive"):
            raise ValueError(f"task must be grasp or drive, got {self.task!r}")
        if self.task == "drive" and not (self.model_config or self.init_from):
            raise ValueError("task drive needs model_config (a fresh model) or init_from (a checkpoint)")
        for key in ("threads", "log_every", "val_batch_size", "frame_stride", "stationary_stride"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("eval_every", "checkpoint_every", "max_val_samples"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
        if not self.stages:
            raise ValueError("stages must list at least one stage")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if any(f < 0 for f in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be 3 non-negative fractions summing to 1, got {list(self.split)}")
        if self.val_modes is None:
            self.val_modes = MODES if self.task == "grasp" else ("all",)
        if self.task == "grasp":
            bad = sorted(set(self.val_modes) - set(MODES))
        else:
            bad = sorted(m for m in self.val_modes if m != "all" and not m.startswith("no_"))
        if bad:
            raise ValueError(f"val_modes has unknown modes {bad} for task {self.task}")


def embed(language: SentenceEncoder, texts: list[str]) -> torch.Tensor:
    """(N, D) embeddings, each distinct instruction encoded once."""
    unique = sorted(set(texts))
    rows = torch.cat([language.encode(unique[i:i + 512]) for i in range(0, len(unique), 512)])
    lookup = {t: i for i, t in enumerate(unique)}
    return rows[torch.tensor([lookup[t] for t in texts], dtype=torch.long)]


def subsample(data: dict, limit: int) -> dict:
    """At most `limit` evenly spaced samples (all when limit is 0)."""
    n = len(data["texts"])
    if limit == 0 or n <= limit:
        return data
    idx = torch.linspace(0, n - 1, limit).round().long()
    return {k: (v[idx] if isinstance(v, torch.Tensor) else [v[i] for i in idx.tolist()]) for k, v in data.items()}


def fresh_model(cfg: TrainConfig):
    if cfg.task == "drive":
        return MultiSensorVLA.from_config_dict(load_yaml(cfg.model_config), where=cfg.model_config)
    return GraspVLA(cfg.model)


def model_from_state(cfg: TrainConfig, config: dict):
    cls = MultiSensorVLA if cfg.task == "drive" else GraspVLA
    return cls.from_config_dict(config, where="train_state")


def initial_model(cfg: TrainConfig, output: Path, single_stage: bool, log):
    source = None
    if single_stage and (output / "config.json").is_file():
        source = output
    elif cfg.init_from:
        source = Path(cfg.init_from)
    if source is None:
        return fresh_model(cfg)
    model = load_pretrained(source)
    log(f"[setup] weights from {source} (model_id {model.model_id})")
    return model.train()


def load_splits(cfg: TrainConfig, model, output: Path, rt, log) -> dict:
    """Training and validation data plus the counts the checkpoint records. Rank 0 builds the
    sample cache alone; the other ranks wait, then read it."""
    spec = BagSpec.load(cfg.bag_spec)
    report: Counter = Counter()
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else output.parent / "cache" / output.name
    try:
        if cfg.task == "drive":
            cache = make_drive_cache(model, spec, cache_dir, report)
        else:
            cache = make_cache(model, spec, cache_dir, cfg.calibration, cfg.label, report)
        train_bags, val_bags, test_bags = split_bags(cfg.bags, cfg.split, cfg.split_seed)
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"msvla-train: {exc}") from None
    t0 = time.perf_counter()
    if not rt.is_main:
        rt.barrier()
    if cfg.task == "drive":
        def load(bags):
            return load_drive_data(bags, spec, cache, report, cfg.frame_stride, cfg.stationary_stride, log=log)
    else:
        def load(bags):
            return load_grasp_data(bags, spec, cache, report, log=log)
    train, train_used = load(train_bags)
    val, val_used = load(val_bags)
    if rt.is_main:
        rt.barrier()
    counts = {"train_bags": len(train_used), "val_bags": len(val_used), "test_bags": len(test_bags),
              "bad_bags": report["bad_bags"], "train_samples": 0 if train is None else len(train["texts"]),
              "val_samples": 0 if val is None else len(val["texts"])}
    dropped = {k: v for k, v in report.items() if k != "bad_bags"}
    log(f"[data] {len(train_bags) + len(val_bags) + len(test_bags)} episodes: train {counts['train_bags']} bags / "
        f"{counts['train_samples']} samples, val {counts['val_bags']} / {counts['val_samples']}, test "
        f"{counts['test_bags']} held out, {counts['bad_bags']} bad bags skipped, dropped samples {dropped}; "
        f"cache {dict(cache.stats)} ({time.perf_counter() - t0:.1f} s)")
    if train is None:
        raise SystemExit("msvla-train: no labelled training samples")
    if val is not None:
        val = subsample(val, cfg.max_val_samples)
    return {"train": train, "val": val, "counts": counts}


def keep_metrics_until(path: Path, stage_index: int, step: int) -> None:
    """Drop metric records written after the saved state (a crash may have logged further)."""
    kept = [r for r in read_metrics(path) if (r["stage_index"], r["step"]) <= (stage_index, step)]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/training/franka_grasp.yaml", help="TrainConfig YAML")
    parser.add_argument("--resume", action="store_true", help="continue from <output>/train_state")
    parser.add_argument("--stage", help="run only this stage of the config (from the output checkpoint if "
                                        "there is one, else init_from)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEPS",
                        help="stop after this many optimiser steps, saving the training state (--resume continues)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(TrainConfig, args.config)
    except ConfigError as exc:
        raise SystemExit(f"msvla-train: {exc}") from None
    names = [s.name for s in cfg.stages]
    if args.stage is not None and names.count(args.stage) != 1:
        raise SystemExit(f"msvla-train: --stage {args.stage}: the config lists it {names.count(args.stage)} "
                         f"times (stages: {names})")
    selected = [i for i, n in enumerate(names) if args.stage is None or n == args.stage]

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(cfg.threads)
    rt = setup_runtime(cfg.device, cfg.precision)
    for i in selected:
        if cfg.stages[i].batch_size % rt.world_size:
            raise SystemExit(f"msvla-train: stages[{i}].batch_size={cfg.stages[i].batch_size} is not divisible "
                             f"by the {rt.world_size} processes")

    def log(text: str) -> None:
        if rt.is_main:
            print(text, flush=True)

    command = " ".join(["msvla-train"] + (sys.argv[1:] if argv is None else list(argv)))
    log(f"[setup] {command} (device {rt.device}, precision {rt.precision}, {rt.world_size} process(es))")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)

    state = None
    if args.resume:
        try:
            state = load_train_state(output / "train_state")
        except (FileNotFoundError, ValueError) as exc:
            raise SystemExit(f"msvla-train: {exc}") from None
        index = int(state["stage_index"])
        if index >= len(names) or names[index] != state["stage"]:
            raise SystemExit(f"msvla-train: train_state is at stage {state['stage']!r} (index {index}), which "
                             f"the config's stages {names} do not have there")
        if not state["stage_done"] and int(state["world_size"]) != rt.world_size:
            raise SystemExit(f"msvla-train: train_state was written by {state['world_size']} processes; resume "
                             f"mid-stage with the same number (got {rt.world_size})")
        model = model_from_state(cfg, state["model_config"])
        model.load_state_dict(state["model"])
        log(f"[setup] resuming at stage {index + 1} {state['stage']} step {state['step']}"
            f"{' (done)' if state['stage_done'] else ''}")
    else:
        model = initial_model(cfg, output, args.stage is not None, log)
    model.to(rt.device).train()

    data = load_splits(cfg, model, output, rt, log)
    train_data, val_data = data["train"], data["val"]
    language = SentenceEncoder(cfg.language_model_dir or None, cache_size=4096)
    needs = model.config.language.dim if cfg.task == "drive" else model.config.language_dim
    if language.dim != needs:
        raise SystemExit(f"language encoder gives {language.dim}-d embeddings, model needs {needs}")

    metrics = output / "metrics.jsonl"
    if rt.is_main:
        if state is not None:
            keep_metrics_until(metrics, int(state["stage_index"]), int(state["step"]))
        elif args.stage is None:
            metrics.write_text("")
    run = Run(model=model, runtime=rt, output=output, seed=cfg.seed, log_every=cfg.log_every,
              eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every, train=train_data,
              train_instructions=embed(language, train_data["texts"]), val=val_data,
              val_instructions=None if val_data is None else embed(language, val_data["texts"]),
              val_batch_size=cfg.val_batch_size, val_modes=tuple(cfg.val_modes), stop_after=args.stop_after,
              history=list(state["history"]) if state is not None else [],
              on_stage_end=lambda r: write_plots(metrics, output / "plots"),
              validate=validate_drive if cfg.task == "drive" else validate)
    for index in selected:
        resume = None
        if state is not None:
            at, done = int(state["stage_index"]), bool(state["stage_done"])
            if index < at or (index == at and done):
                continue
            resume = state if index == at else None
        if not run_stage(run, index, cfg.stages[index], resume):
            log(f"[stop] after {run.steps_run} steps in stage {index + 1} {names[index]}; "
                f"continue with --resume")
            rt.close()
            return 0

    if rt.is_main:
        if not run.last_val and val_data is not None:
            run.last_val = run.validate(model, val_data, run.val_instructions, rt, cfg.val_batch_size, cfg.val_modes)
        model_id = save_pretrained(model, output, extra={
            "trained": True, "command": command, "stages": run.history,
            "steps": sum(h["steps"] for h in run.history), **data["counts"], "seed": cfg.seed,
            "init_from": cfg.init_from,
            "resumed": bool(args.resume), "world_size": rt.world_size, "device": str(rt.device),
            "precision": rt.precision, **run.last_val})
        write_plots(metrics, output / "plots")
        log(f"[save] {output} model_id={model_id}; " + " ".join(
            f"{h['name']}: {h['steps']} steps {h['seconds']:.0f} s ({h['samples_per_s']:.0f} samples/s)"
            for h in run.history))
    digest_file = os.environ.get("MSVLA_TRAIN_DIGEST_DIR")
    if digest_file:  # test hook: each rank reports the weights it ended with
        write_digest(model, Path(digest_file) / f"rank{rt.rank}.txt")
    rt.barrier()
    rt.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
