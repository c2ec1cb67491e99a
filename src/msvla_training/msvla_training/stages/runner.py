"""The optimisation loop of one stage: seeded, data-parallel, logged, validated and resumable.

Randomness: each stage reseeds the global RNGs from (seed, stage index) and draws everything it
uses from two generators: a shared one (batch order and per-step choices; identical on all ranks)
and a per-rank one (augmentation noise). Their states, the batch order, model, training-only
modules, optimiser, scheduler and GradScaler are saved in <output>/train_state, so a resumed
stage continues exactly where it stopped.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ..runtime import (Runtime, generator_state, global_rng_state, save_train_state, seed_everything,
                       set_generator_state, set_global_rng_state)
from . import StageRandom, stage_class
from .validation import validate


@dataclass
class Run:
    """Everything the stages of one invocation share."""

    model: torch.nn.Module
    runtime: Runtime
    output: Path
    seed: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    train: dict
    train_instructions: torch.Tensor  # (N, D) per-sample instruction embeddings
    val: dict | None
    val_instructions: torch.Tensor | None
    val_batch_size: int
    val_modes: tuple[str, ...]
    stop_after: int | None = None  # optimiser steps this invocation may run (None: all)
    steps_run: int = 0
    history: list = field(default_factory=list)  # finished stages
    last_val: dict = field(default_factory=dict)
    on_stage_end: object = None  # callable(run) on rank 0 after each stage (plots)
    validate: object = validate  # (model, data, instructions, runtime, batch_size, modes) -> metrics

    def record(self, entry: dict) -> None:
        if self.runtime.is_main:
            with open(self.output / "metrics.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")


class BatchOrder:
    """Sample indices without replacement, reshuffled each epoch from the shared generator."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator
        self.order, self.position = torch.randperm(n, generator=generator), 0

    def next(self, size: int) -> torch.Tensor:
        if self.position + size > self.n:
            self.order, self.position = torch.randperm(self.n, generator=self.generator), 0
        idx = self.order[self.position:self.position + size]
        self.position += size
        return idx

    def state(self) -> dict:
        return {"order": self.order, "position": self.position}

    def load(self, state: dict) -> None:
        self.order, self.position = state["order"].long(), int(state["position"])


def lr_factor(step: int, steps: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to min_ratio of the stage's learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_batch(run: Run, stage, idx: torch.Tensor) -> dict:
    device = run.runtime.device
    batch = {}
    keys = stage.inputs or [k for k, v in run.train.items() if isinstance(v, torch.Tensor)]
    for key in keys:
        value = run.train[key][idx]
        batch[key] = value.to(device).float() if value.is_floating_point() else value.to(device)
    if stage.needs_instruction:
        batch["instruction"] = run.train_instructions[idx].to(device)
    return batch


def _set_trainable(model, names) -> None:
    for comp in model.component_names():
        model.component(comp).requires_grad_(comp in names)


def run_stage(run: Run, index: int, spec, resume: dict | None = None) -> bool:
    """Train stage `spec` (a StageConfig) to its end; False when stopped early by `stop_after`
    (the state is saved first). `resume` is a loaded train state positioned inside this stage."""
    rt, model = run.runtime, run.model
    cls = stage_class(spec.name)
    n = len(run.train["texts"])
    seed = run.seed * 1000 + index
    seed_everything(seed)
    stage = cls(model, spec.parsed_params).to(rt.device)
    trained = [c for c in stage.components if c not in spec.freeze]
    _set_trainable(model, trained)
    params = [p for p in stage.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"stage {spec.name}: every component it trains is frozen ({list(spec.freeze)})")
    optimiser = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    warmup = spec.warmup_steps if spec.warmup_steps is not None else max(1, spec.steps // 50)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: lr_factor(s, spec.steps, max(1, warmup), spec.min_lr_ratio))
    scaler = rt.grad_scaler()
    shared = torch.Generator().manual_seed(seed)
    local = torch.Generator(device=rt.device).manual_seed(seed * 100 + rt.rank + 1)
    order = BatchOrder(n, shared)
    start, seconds, running = 0, 0.0, {}
    if resume is not None:
        stage.load_extra_state_dict(resume["extra"])
        optimiser.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        set_generator_state(shared, resume["shared_rng"])
        set_generator_state(local, resume["local_rng"][rt.rank])
        order.load(resume["order"])
        set_global_rng_state(resume["global_rng"])
        start, seconds, running = int(resume["step"]), float(resume["seconds"]), dict(resume["running"])
    wrapped = rt.wrap(stage, find_unused_parameters=not stage.uses_every_parameter())
    rng = StageRandom(shared, local)
    offset = sum(h["steps"] for h in run.history)
    where = {"stage": spec.name, "stage_index": index}

    def save(step: int, done: bool) -> None:
        local_states = rt.gather(generator_state(local))  # collective: every rank calls it
        if rt.is_main:
            save_train_state(run.output / "train_state", {
                "model": model.state_dict(), "model_config": model.config.to_dict(),
                "extra": stage.extra_state_dict(), "stage_index": index,
                "stage": spec.name, "step": step, "stage_done": done, "seconds": seconds,
                "optimizer": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),  # lr_lambdas is [None]: the schedule is code
                "scaler": scaler.state_dict(), "shared_rng": generator_state(shared), "local_rng": local_states,
                "global_rng": global_rng_state(), "order": order.state(), "running": running,
                "history": run.history, "world_size": rt.world_size})
        rt.barrier()

    def evaluate(step: int) -> None:
        if rt.is_main and run.val is not None:
            run.last_val = run.validate(model, run.val, run.val_instructions, rt, run.val_batch_size, run.val_modes)
            run.record({"split": "val", **where, "step": step, "global_step": offset + step, **run.last_val})
            bar.write(f"[val] {spec.name} step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in run.last_val.items()),
                      file=sys.stderr)
        rt.barrier()

    bar = tqdm(total=spec.steps, initial=start, desc=f"{index + 1} {spec.name}", file=sys.stderr,
               disable=not rt.is_main, dynamic_ncols=True, mininterval=2.0)
    stage.train()
    interval_steps, interval_started = 0, time.perf_counter()
    try:
        for step in range(start, spec.steps):
            if run.stop_after is not None and run.steps_run >= run.stop_after:
                save(step, done=False)
                return False
            t0 = time.perf_counter()
            batch = make_batch(run, stage, rt.shard(order.next(spec.batch_size)))
            with rt.autocast():
                loss, parts = wrapped(batch, rng)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"stage {spec.name} step {step + 1}: loss is {loss.item()} ({parts})")
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
            scaler.step(optimiser)
            scaler.update()
            scheduler.step()
            seconds += time.perf_counter() - t0
            run.steps_run += 1
            running["loss"] = running.get("loss", 0.0) + loss.item()
            for k, v in parts.items():
                running[k] = running.get(k, 0.0) + v
            running["__steps"] = running.get("__steps", 0) + 1
            interval_steps += 1
            bar.update(1)
            done = step + 1
            if done % run.log_every == 0 or done == spec.steps:
                count = running.pop("__steps")
                means = rt.mean_across_ranks({k: v / count for k, v in running.items()})
                rate = interval_steps * spec.batch_size / max(time.perf_counter() - interval_started, 1e-9)
                mean_loss = means.pop("loss")
                run.record({"split": "train", **where, "step": done, "global_step": offset + done,
                            "loss": mean_loss, "losses": means, "lr": scheduler.get_last_lr()[0],
                            "samples_per_s": rate})
                bar.set_postfix(loss=f"{mean_loss:.3f}", samples_per_s=f"{rate:.0f}", refresh=False)
                running, interval_steps, interval_started = {}, 0, time.perf_counter()
            paused = time.perf_counter()  # validation and saving do not count against samples/s
            if run.eval_every and done % run.eval_every == 0 and done < spec.steps:
                evaluate(done)
            if run.checkpoint_every and done % run.checkpoint_every == 0 and done < spec.steps:
                save(done, done=False)
            interval_started += time.perf_counter() - paused
        evaluate(spec.steps)
        run.history.append({"name": spec.name, "steps": spec.steps, "seconds": round(seconds, 3),
                            "samples_per_s": round(spec.steps * spec.batch_size / max(seconds, 1e-9), 1)})
        run.record({"split": "stage", **where, "step": spec.steps, "global_step": offset + spec.steps,
                    **run.history[-1]})
        save(spec.steps, done=True)
    finally:
        bar.close()
        stage.close()
        _set_trainable(model, model.component_names())
    if rt.is_main and run.on_stage_end is not None:
        run.on_stage_end(run)
    return True
