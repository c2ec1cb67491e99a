"""Training throughput of one stage on loaded samples (benchmarks/training.py, capacity planning).

The instruction embeddings are fixed random vectors per distinct text: the rate does not depend on
what the language encoder would say, and the benchmark then needs no language model.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from msvla_core.models.config import GraspModelConfig, ImageInputConfig
from msvla_core.models.grasp_vla import GraspVLA

from ..runtime import setup_runtime
from .config import StageConfig
from .runner import Run, run_stage


def benchmark_stage(name: str, data: dict, steps: int = 12, batch_size: int = 32, seed: int = 0,
                    lr: float = 1e-3, params: dict | None = None) -> tuple[float, int]:
    """(seconds, samples) of `steps` optimiser steps of stage `name` on `data` (load_grasp_data
    output), after one untimed warm-up step; the time covers the steps only (no validation or
    state saving)."""
    h, w = data["rgb"].shape[-2:]
    torch.manual_seed(seed)
    model = GraspVLA(GraspModelConfig(image=ImageInputConfig(width=int(w), height=int(h))))
    g = torch.Generator().manual_seed(seed)
    unique = sorted(set(data["texts"]))
    table = torch.nn.functional.normalize(torch.randn(len(unique), model.config.language_dim, generator=g), dim=1)
    lookup = {t: i for i, t in enumerate(unique)}
    instructions = table[torch.tensor([lookup[t] for t in data["texts"]])]
    with tempfile.TemporaryDirectory(prefix="msvla-stage-bench-") as out:
        run = Run(model=model, runtime=setup_runtime("cpu", "fp32"), output=Path(out), seed=seed,
                  log_every=10 ** 9, eval_every=0, checkpoint_every=0, train=data,
                  train_instructions=instructions, val=None, val_instructions=None, val_batch_size=batch_size,
                  val_modes=("rgbd",))
        run_stage(run, 0, StageConfig(name=name, steps=1, lr=lr, batch_size=batch_size, params=params or {}))
        run_stage(run, 1, StageConfig(name=name, steps=steps, lr=lr, batch_size=batch_size, params=params or {}))
    return run.history[-1]["seconds"], steps * batch_size
