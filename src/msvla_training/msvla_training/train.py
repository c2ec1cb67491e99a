"""msvla-train: train the spatial Franka grasp VLA from a folder of recorded rosbag2 episodes.

Each episode directory (as written by msvla-record-franka) is checked against the bag spec; a bad
bag is reported by name, counted and skipped. Episodes are split by name (split_by_episode), so an
episode never contributes to both train and validation. Samples go through the model's own encoder
preprocessing (the same code the live encoder nodes run) and are cached per bag, so a second run
skips bag decoding entirely. Labels, loss and optimiser loop are the bootstrap trainer's.

Metrics go to <output>/metrics.jsonl as JSON lines; the model is saved with save_pretrained.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from msvla_core.config import load_config
from msvla_core.data.bags import BagError, BagSpec, validate_bag
from msvla_core.data.samples import SampleCache, split_by_episode
from msvla_core.geometry import grasp_yaw_from_quaternion, pose_to_matrix
from msvla_core.models.checkpoint import load_pretrained, save_pretrained
from msvla_core.models.config import GraspModelConfig
from msvla_core.models.grasp_vla import GraspVLA
from msvla_core.models.language import SentenceEncoder
from msvla_sim.expert import SHAPE_SYNONYMS, YAW_PERIOD, fold_yaw, read_camera_to_base

from .bootstrap_grasp import label_at, train

LABEL_KEYS = ("cell", "yaw", "kind", "width", "dz")


@dataclass
class TrainConfig:
    bags: str  # folder whose sub-directories are episode bags
    output: str  # checkpoint directory (metrics.jsonl is written into it)
    bag_spec: str = "config/training/bags/franka_grasp.yaml"
    calibration: str = "config/franka/calibration.yaml"
    cache_dir: str = ""  # empty: <output>/../cache/<output name>
    init_from: str | None = None  # checkpoint directory to fine-tune from
    label: str = "grasp"  # label name in the bag spec
    language_model_dir: str = ""  # empty: packaged all-MiniLM-L6-v2
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0
    threads: int = 2
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    split_seed: int = 0
    log_every: int = 50

    def __post_init__(self):
        for name in ("steps", "batch_size", "threads", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        if any(f < 0 for f in self.split) or abs(sum(self.split) - 1.0) > 1e-6:
            raise ValueError(f"split must be 3 non-negative fractions summing to 1, got {self.split}")


def shape_in(instruction: str) -> str | None:
    words = instruction.lower().split()
    for shape, synonyms in SHAPE_SYNONYMS.items():
        if any(s in words for s in synonyms):
            return shape
    return None


def grasp_label(grasp: dict, instruction: str, geometry: np.ndarray):
    """Bootstrap label from a recorded GraspPose. The bag carries no object shape, so the yaw
    symmetry comes from the instruction's shape word; without one the half-turn symmetry every
    parallel-jaw grasp has is the safe assumption."""
    shape = shape_in(instruction)
    period = YAW_PERIOD[shape] if shape else math.pi
    if period is None:
        yaw, kind = 0.0, 0
    else:
        yaw = fold_yaw(grasp_yaw_from_quaternion(grasp["quaternion"]), period)
        kind = 2 if period < math.pi else 1
    return label_at(grasp["position"], yaw, kind, grasp["width"], geometry)


def make_preprocess(model: GraspVLA, camera_to_base: np.ndarray, label_name: str, counters: Counter):
    """Cache preprocessing: the model's encoder preprocess plus the label; unlabelled samples
    become empty entries and are dropped after loading."""

    def preprocess(sample) -> dict[str, np.ndarray]:
        grasp = sample.labels.get(label_name)
        if grasp is None or "rgb" not in sample.raw or "depth" not in sample.raw:
            counters["unlabelled"] += 1
            return {}
        try:
            rgb = model.rgb_encoder.preprocess(sample.raw["rgb"])
            depth = model.depth_encoder.preprocess({**sample.raw["depth"], "camera_to_base": camera_to_base})
        except ValueError as exc:  # one bad frame (NaN, mostly invalid depth) must not drop the bag
            counters["bad_frames"] += 1
            print(f"[data] frame {sample.stamp_ns} skipped: {exc}", flush=True)
            return {}
        label = grasp_label(grasp, sample.instruction, depth["geometry"])
        if label is None:
            counters["no_valid_cell"] += 1
            return {}
        out = {"rgb": rgb["image"], "depth": depth["depth"], "geometry": depth["geometry"],
               "target": np.asarray(grasp["position"], dtype=np.float32)}
        out.update(cell=np.asarray(label.cell, np.int64), kind=np.asarray(label.yaw_kind, np.int64),
                   yaw=np.asarray(label.yaw, np.float32), width=np.asarray(label.width, np.float32),
                   dz=np.asarray(label.dz, np.float32))
        return out

    return preprocess


def is_cached(cache: SampleCache, bag: Path) -> bool:
    """True when the cache already holds a current file for `bag` (so it need not be validated)."""
    file = cache.file_for(bag)
    if not file.is_file():
        return False
    try:
        from safetensors import safe_open
        with safe_open(str(file), framework="numpy") as f:
            return (f.metadata() or {}).get("digest") == cache.digest(bag)
    except Exception:  # unreadable cache files are rebuilt by SampleCache.load
        return False


def load_split(bags: list[Path], cache: SampleCache, spec: BagSpec, report: Counter) -> tuple[list, list]:
    """(samples, bag names used) of one split; bad bags are reported by name and skipped."""
    samples, used = [], []
    for bag in bags:
        try:
            if not is_cached(cache, bag):
                validate_bag(bag, spec)
            loaded = cache.load(bag)
        except (BagError, ValueError, OSError) as exc:
            report["bad_bags"] += 1
            print(f"[data] skipping bad bag {bag.name}: {exc}", flush=True)
            continue
        kept = [s for s in loaded if "cell" in s.arrays]
        samples.extend(kept)
        used.append(bag.name)
    return samples, used


def stack(samples: list) -> dict:
    data = {k: torch.from_numpy(np.stack([s.arrays[k] for s in samples]))
            for k in ("rgb", "depth", "geometry", "target")}
    # Scalars may come back from the cache file as (1,) arrays; the loss wants (N,) vectors.
    data.update({k: torch.from_numpy(np.concatenate([s.arrays[k].reshape(1) for s in samples]))
                 for k in LABEL_KEYS})
    data["texts"] = [s.instruction for s in samples]
    return data


def embed(language: SentenceEncoder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each distinct instruction embedded once; returns (embeddings, per-sample index)."""
    unique = sorted(set(texts))
    lookup = {t: i for i, t in enumerate(unique)}
    return language.encode(unique), torch.tensor([lookup[t] for t in texts], dtype=torch.long)


@torch.no_grad()
def validate(model: GraspVLA, data: dict, embeddings: torch.Tensor, index: torch.Tensor,
             batch_size: int) -> dict:
    model.eval()
    hits, errors = [], []
    for start in range(0, data["rgb"].shape[0], batch_size):
        sl = slice(start, start + batch_size)
        pred = model(embeddings[index[sl]], rgb=data["rgb"][sl], depth=data["depth"][sl],
                     geometry=data["geometry"][sl])
        b = data["cell"][sl].shape[0]
        hits.append(pred.heatmap.reshape(b, -1).argmax(dim=1) == data["cell"][sl])
        errors.append(torch.linalg.norm(pred.position - data["target"][sl], dim=1))
    return {"val_cell_acc": float(torch.cat(hits).float().mean()),
            "val_median_error_cm": 100 * float(torch.cat(errors).median())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/training/franka_grasp.yaml", help="TrainConfig YAML")
    parser.add_argument("--resume", action="store_true",
                        help="load the weights in the output checkpoint and train the given steps more")
    args = parser.parse_args(argv)
    cfg = load_config(TrainConfig, args.config)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    command = " ".join(["msvla-train"] + (sys.argv[1:] if argv is None else list(argv)))
    print(f"[setup] {command}", flush=True)
    output = Path(cfg.output)

    source = output if args.resume else (Path(cfg.init_from) if cfg.init_from else None)
    if source is not None:
        model = load_pretrained(source)
        previous = json.loads((source / "config.json").read_text()) if args.resume else {}
        print(f"[setup] weights from {source} (model_id {model.model_id})", flush=True)
    else:
        model, previous = GraspVLA(GraspModelConfig()), {}

    spec = BagSpec.load(cfg.bag_spec)
    if cfg.label not in spec.labels:
        raise SystemExit(f"label {cfg.label!r} is not in the bag spec {cfg.bag_spec} ({sorted(spec.labels)})")
    camera_to_base = pose_to_matrix(read_camera_to_base(cfg.calibration))
    # The cache holds preprocessed tensors, so anything that changes preprocessing invalidates it.
    version = hashlib.sha256(json.dumps([dataclasses.asdict(model.config), camera_to_base.tolist(),
                                         cfg.label, "train-v1"], sort_keys=True).encode()).hexdigest()[:16]
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else output.parent / "cache" / output.name
    report: Counter = Counter()
    cache = SampleCache(cache_dir, spec, version, make_preprocess(model, camera_to_base, cfg.label, report))

    root = Path(cfg.bags)
    if not root.is_dir():
        raise SystemExit(f"bags folder {root} does not exist")
    episodes = sorted(p for p in root.iterdir() if p.is_dir())
    train_bags, val_bags, test_bags = split_by_episode(episodes, cfg.split, cfg.split_seed)
    t0 = time.perf_counter()
    train_samples, train_used = load_split(train_bags, cache, spec, report)
    val_samples, val_used = load_split(val_bags, cache, spec, report)
    data_seconds = time.perf_counter() - t0
    print(f"[data] {len(episodes)} episodes: train {len(train_used)} bags / {len(train_samples)} samples, "
          f"val {len(val_used)} / {len(val_samples)}, test {len(test_bags)} held out, "
          f"{report['bad_bags']} bad bags skipped; cache {dict(cache.stats)} ({data_seconds:.1f} s)", flush=True)
    if not train_samples:
        raise SystemExit("no labelled training samples")

    language = SentenceEncoder(cfg.language_model_dir or None, cache_size=4096)
    if language.dim != model.config.language_dim:
        raise SystemExit(f"language encoder gives {language.dim}-d embeddings, model needs {model.config.language_dim}")
    train_data = stack(train_samples)
    embeddings, text_index = embed(language, train_data["texts"])

    output.mkdir(parents=True, exist_ok=True)
    metrics_path = output / "metrics.jsonl"
    with open(metrics_path, "a" if args.resume else "w") as metrics:
        def log(step: int, means: dict) -> None:
            metrics.write(json.dumps({"step": step, "split": "train", "loss_parts": means}) + "\n")
            metrics.flush()

        torch.manual_seed(cfg.seed)
        seconds = train(model, train_data, embeddings, text_index, cfg.steps, cfg.batch_size, cfg.lr,
                        cfg.seed, channels_last=False, log_every=cfg.log_every, on_log=log)
        result = {"step": cfg.steps, "split": "val", "episodes": len(val_used), "samples": len(val_samples)}
        if val_samples:
            val_data = stack(val_samples)
            val_emb, val_index = embed(language, val_data["texts"])
            result.update(validate(model, val_data, val_emb, val_index, cfg.batch_size))
        metrics.write(json.dumps(result) + "\n")
    print(f"[val] {result}", flush=True)

    total_steps = int(previous.get("steps", 0)) + cfg.steps
    model_id = save_pretrained(model, output, extra={
        "trained": True, "command": command, "train_bags": len(train_used), "val_bags": len(val_used),
        "test_bags": len(test_bags), "bad_bags": report["bad_bags"], "train_samples": len(train_samples),
        "steps": total_steps, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed,
        "resumed": bool(args.resume), "init_from": cfg.init_from, "seconds": round(seconds, 1),
        "data_seconds": round(data_seconds, 1), **{k: v for k, v in result.items() if k.startswith("val_")}})
    print(f"[save] {output} model_id={model_id} ({seconds:.0f} s training)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
