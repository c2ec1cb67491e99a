"""Supervised bootstrap of the RGB-D grasp VLA from labelled simulator scenes.

Scenes come from the PyBullet Franka tabletop with the camera placed exactly where the live
simulator puts it (the calibration pose in config/franka/calibration.yaml), and every input goes
through the same preprocessing as the live encoder nodes (prepare_rgb, prepare_depth). For each
scene one object is the target of an instruction; the label is the feature cell whose geometry
point is nearest in xy to the object's centre, plus the grasp yaw, opening width and height
offset at that cell. The loss is cross-entropy of the head's heat-map over cells toward the label
cell plus regressions of the per-cell outputs at it. All four components are trained together and
saved with msvla_core.models.checkpoint.save_pretrained.

Seeds: training scenes use seeds from --seed-start (default 100000); seeds 0-9999 are kept free
for evaluation, and the final held-out check runs on --eval-seed-start (default 5000).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from msvla_core.geometry import CameraModel, pose_to_matrix
from msvla_core.models.checkpoint import save_pretrained
from msvla_core.models.config import GraspModelConfig
from msvla_core.models.grasp_vla import GraspVLA
from msvla_core.models.language import SentenceEncoder
from msvla_core.preprocessing import prepare_depth, prepare_rgb
from msvla_sim.expert import (WIDTH_MARGIN_M, YAW_PERIOD, fold_yaw, instruction_for, make_scene,
                              read_camera_to_base)

from .losses import DZ_RANGE_M, HeadOutputs, grasp_loss


def observe(scene, camera_to_base: np.ndarray, config: GraspModelConfig):
    """Render and preprocess exactly like the encoder nodes (CameraInfo K -> CameraModel)."""
    rgb, depth, cam = scene.render()
    camera = CameraModel.from_k(np.asarray(cam.K).ravel(), cam.width, cam.height)
    rgb_in = prepare_rgb(rgb, config)
    depth_in, geometry = prepare_depth(depth, camera, camera_to_base, config)
    return rgb_in, depth_in, geometry


@dataclass
class Label:
    cell: int  # flat index into the (h, w) feature grid
    yaw: float  # folded grasp yaw (radians); meaningless when yaw_mask == 0
    yaw_kind: int  # 0: free (cylinder), 1: half-turn symmetric (box), 2: quarter-turn (cube)
    width: float  # metres
    dz: float  # metres, grasp height minus the cell point's z


def label_for(obj: dict, geometry: np.ndarray) -> Label | None:
    """Grasp label of one object on the feature grid; None when no cell has valid geometry."""
    shape = obj["shape"]
    period = YAW_PERIOD[shape]
    # Grasp yaw equal to the object's yaw closes the fingers across the object's y extent
    # (msvla_sim.scene_objects: the long axis of the box is its x axis).
    if period is None:
        yaw, kind = 0.0, 0
    else:
        yaw, kind = fold_yaw(float(obj["yaw"]), period), (2 if period < math.pi else 1)
    across = float(obj["size"][1])
    width = min(across + WIDTH_MARGIN_M, 0.08)
    return label_at(obj["position"], yaw, kind, width, geometry)


def label_at(centre, yaw: float, yaw_kind: int, width: float, geometry: np.ndarray) -> Label | None:
    """Grasp label at the valid cell nearest in xy to `centre`; shared by scene and bag labels."""
    valid = geometry[3] > 0.5  # the head's own validity test
    if not valid.any():
        return None
    centre = np.asarray(centre, dtype=np.float64)
    d2 = (geometry[0] - centre[0]) ** 2 + (geometry[1] - centre[1]) ** 2
    d2 = np.where(valid, d2, np.inf)
    cell = int(np.argmin(d2))
    cell_z = float(geometry[2].reshape(-1)[cell])
    dz = float(np.clip(centre[2] - cell_z, -0.95 * DZ_RANGE_M, 0.95 * DZ_RANGE_M))
    return Label(cell, float(yaw), int(yaw_kind), float(width), dz)


def generate(n_scenes: int, seed_start: int, config: GraspModelConfig, camera_pose: list[float],
             log_every: int = 250):
    """Labelled scenes: preprocessed inputs (float16), instruction texts and labels."""
    scene = make_scene(config.image.width, config.image.height, camera_pose)
    camera_to_base = pose_to_matrix(camera_pose)
    fh, fw = config.feature_size
    h, w = config.image.height, config.image.width
    rgb = np.empty((n_scenes, 3, h, w), np.float16)
    depth = np.empty((n_scenes, 2, h, w), np.float16)
    geometry = np.empty((n_scenes, 4, fh, fw), np.float32)
    texts: list[str] = []
    cells = np.empty(n_scenes, np.int64)
    yaws = np.empty(n_scenes, np.float32)
    kinds = np.empty(n_scenes, np.int64)
    widths = np.empty(n_scenes, np.float32)
    dzs = np.empty(n_scenes, np.float32)
    started = time.perf_counter()
    seed, i = seed_start, 0
    try:
        while i < n_scenes:
            description = scene.reset(seed)
            rng = np.random.default_rng([seed, 1])
            seed += 1
            obj = description["objects"][int(rng.integers(len(description["objects"])))]
            rgb_in, depth_in, geom = observe(scene, camera_to_base, config)
            label = label_for(obj, geom)
            if label is None:
                continue
            rgb[i], depth[i], geometry[i] = rgb_in, depth_in, geom
            texts.append(instruction_for(rng, obj["colour"], obj["shape"]))
            cells[i], yaws[i], kinds[i] = label.cell, label.yaw, label.yaw_kind
            widths[i], dzs[i] = label.width, label.dz
            i += 1
            if i % log_every == 0:
                rate = i / (time.perf_counter() - started)
                print(f"[data] {i}/{n_scenes} scenes ({rate:.1f}/s)", flush=True)
    finally:
        scene.close()
    return {"rgb": torch.from_numpy(rgb), "depth": torch.from_numpy(depth),
            "geometry": torch.from_numpy(geometry), "texts": texts,
            "cell": torch.from_numpy(cells), "yaw": torch.from_numpy(yaws),
            "kind": torch.from_numpy(kinds), "width": torch.from_numpy(widths),
            "dz": torch.from_numpy(dzs), "seeds": (seed_start, seed)}


def train(model: GraspVLA, data: dict, embeddings: torch.Tensor, text_index: torch.Tensor,
          steps: int, batch_size: int, lr: float, seed: int, channels_last: bool,
          log_every: int = 50, on_log=None) -> float:
    """Supervised loop; `on_log(step, means)` (optional) receives the mean loss parts per log step."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=memory).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warmup = max(1, steps // 50)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
    capture = HeadOutputs(model)
    n = data["rgb"].shape[0]
    started = time.perf_counter()
    order = torch.randperm(n, generator=generator)
    position = 0
    running: dict[str, float] = {}
    try:
        for step in range(steps):
            if position + batch_size > n:
                order, position = torch.randperm(n, generator=generator), 0
            idx = order[position:position + batch_size]
            position += batch_size
            batch = {k: data[k][idx] for k in ("cell", "yaw", "kind", "width", "dz")}
            rgb = data["rgb"][idx].float().contiguous(memory_format=memory)
            depth = data["depth"][idx].float().contiguous(memory_format=memory)
            geometry = data["geometry"][idx].contiguous(memory_format=memory)
            instruction = embeddings[text_index[idx]]
            pred = model(instruction, rgb=rgb, depth=depth, geometry=geometry)
            loss, parts = grasp_loss(pred, capture.value, batch, config)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            scheduler.step()
            for k, v in parts.items():
                running[k] = running.get(k, 0.0) + v
            if (step + 1) % log_every == 0 or step + 1 == steps:
                count = log_every if (step + 1) % log_every == 0 else (step + 1) % log_every
                means = " ".join(f"{k}={v / count:.3f}" for k, v in running.items())
                elapsed = time.perf_counter() - started
                print(f"[train] step {step + 1}/{steps} {means} lr={scheduler.get_last_lr()[0]:.2e} "
                      f"({elapsed:.0f} s)", flush=True)
                if on_log is not None:
                    on_log(step + 1, {k: v / count for k, v in running.items()})
                running = {}
    finally:
        capture.remove()
    model.to(memory_format=torch.contiguous_format).eval()
    return time.perf_counter() - started


@torch.no_grad()
def evaluate(model: GraspVLA, language: SentenceEncoder, seed_start: int, n_scenes: int,
             camera_pose: list[float], execute: bool = True) -> dict:
    """Held-out check with the monolithic model: position error vs the target's centre and
    closed-loop success of the predicted grasp in the simulator."""
    config = model.config
    model.eval()
    scene = make_scene(config.image.width, config.image.height, camera_pose)
    camera_to_base = pose_to_matrix(camera_pose)
    errors, errors_xy, successes, by_shape = [], [], [], {}
    try:
        for seed in range(seed_start, seed_start + n_scenes):
            description = scene.reset(seed)
            rng = np.random.default_rng([seed, 2])
            obj = description["objects"][int(rng.integers(len(description["objects"])))]
            text = f"pick up the {obj['name']}"
            rgb_in, depth_in, geom = observe(scene, camera_to_base, config)
            pred = model(language.encode([text]), rgb=torch.from_numpy(rgb_in)[None],
                         depth=torch.from_numpy(depth_in)[None], geometry=torch.from_numpy(geom)[None])
            position = pred.position[0].numpy().astype(float)
            centre = np.asarray(obj["position"], dtype=float)
            errors.append(float(np.linalg.norm(position - centre)))
            errors_xy.append(float(np.linalg.norm(position[:2] - centre[:2])))
            if execute:
                outcome = scene.execute_grasp(position, float(pred.yaw[0]), float(pred.width[0]))
                ok = outcome.success_for(obj["name"])
                successes.append(ok)
                tally = by_shape.setdefault(obj["shape"], [0, 0])
                tally[0] += int(ok)
                tally[1] += 1
    finally:
        scene.close()
    result = {"scenes": n_scenes, "median_error_cm": 100 * float(np.median(errors)),
              "median_error_xy_cm": 100 * float(np.median(errors_xy)),
              "p90_error_cm": 100 * float(np.percentile(errors, 90))}
    if execute:
        result["success_rate"] = float(np.mean(successes))
        result["successes"] = int(np.sum(successes))
        result["by_shape"] = {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_shape.items())}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="models/franka_rgbd", help="checkpoint directory")
    parser.add_argument("--scenes", type=int, default=2000, help="training scenes")
    parser.add_argument("--seed-start", type=int, default=100000, help="first training scene seed")
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 here)")
    parser.add_argument("--no-channels-last", action="store_true")
    parser.add_argument("--eval-seed-start", type=int, default=5000)
    parser.add_argument("--eval-scenes", type=int, default=50)
    parser.add_argument("--language-model-dir", default="", help="empty: packaged all-MiniLM-L6-v2")
    parser.add_argument("--calibration", default="config/franka/calibration.yaml",
                        help="camera calibration parameter file of the graph (camera_to_base)")
    args = parser.parse_args(argv)
    if args.seed_start < 10000:
        parser.error("--seed-start below 10000 would overlap the evaluation seeds 0-9999")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_num_threads(max(1, min(args.threads, 2)))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    command = " ".join(["msvla-bootstrap-grasp"] + (sys.argv[1:] if argv is None else list(argv)))
    print(f"[setup] {command}", flush=True)

    config = GraspModelConfig()
    camera_pose = read_camera_to_base(args.calibration)
    t0 = time.perf_counter()
    data = generate(args.scenes, args.seed_start, config, camera_pose)
    gen_seconds = time.perf_counter() - t0
    print(f"[data] {args.scenes} scenes (seeds {data['seeds'][0]}-{data['seeds'][1] - 1}) "
          f"in {gen_seconds:.0f} s", flush=True)

    language = SentenceEncoder(args.language_model_dir or None, cache_size=4096)
    if language.dim != config.language_dim:
        raise SystemExit(f"language encoder gives {language.dim}-d embeddings, config needs {config.language_dim}")
    unique = sorted(set(data["texts"]))
    lookup = {text: i for i, text in enumerate(unique)}
    embeddings = language.encode(unique)
    text_index = torch.tensor([lookup[t] for t in data["texts"]], dtype=torch.long)
    print(f"[language] {len(unique)} distinct instructions embedded", flush=True)

    torch.manual_seed(args.seed)
    model = GraspVLA(config)
    seconds = train(model, data, embeddings, text_index, args.steps, args.batch_size, args.lr,
                    args.seed, channels_last=not args.no_channels_last)
    print(f"[train] done in {seconds:.0f} s", flush=True)

    model_id = save_pretrained(model, Path(args.output), extra={
        "trained": True, "command": command, "train_scenes": args.scenes,
        "train_seeds": [data["seeds"][0], data["seeds"][1] - 1], "steps": args.steps,
        "batch_size": args.batch_size, "seed": args.seed, "seconds": round(seconds, 1),
        "data_seconds": round(gen_seconds, 1)})
    print(f"[save] {args.output} model_id={model_id}", flush=True)

    if args.eval_scenes > 0:
        result = evaluate(model, language, args.eval_seed_start, args.eval_scenes, camera_pose)
        print(f"[eval] seeds {args.eval_seed_start}-{args.eval_seed_start + args.eval_scenes - 1}: "
              f"median error {result['median_error_cm']:.2f} cm (xy {result['median_error_xy_cm']:.2f} cm, "
              f"p90 {result['p90_error_cm']:.2f} cm), closed-loop success "
              f"{result['successes']}/{result['scenes']} ({100 * result['success_rate']:.0f}%) "
              f"by shape {result['by_shape']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
