"""Where and how msvla-train runs: device, numeric precision and data parallelism.

`device: auto` picks CUDA when present. `precision: auto` means bf16 autocast on CUDA when the
GPU supports it, else fp16 autocast with a GradScaler on CUDA, and plain fp32 on CPU. When
started by torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment, WORLD_SIZE > 1) the
process joins a process group (gloo on CPU, nccl on CUDA); every rank then takes its own shard
of each global batch and rank 0 alone logs, validates and writes files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda was requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
    if name == "auto":
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if name == "fp16" and device.type != "cuda":
        raise ValueError(f"precision: fp16 needs CUDA (device is {device.type}); use bf16 or fp32")
    return name


@dataclass
class Runtime:
    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    _owns_group: bool = field(default=False, repr=False)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        """Mixed-precision context of the forward pass (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling is needed for fp16 only; a disabled scaler passes steps straight through."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def wrap(self, module: torch.nn.Module, find_unused_parameters: bool = True) -> torch.nn.Module:
        """DistributedDataParallel around `module` when distributed. A step that leaves trainable
        parameters out of its loss (a modality switched off, an unused missing-modality
        embedding) needs find_unused_parameters."""
        if not self.distributed:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                                         find_unused_parameters=find_unused_parameters)

    def shard(self, indices: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch of sample indices."""
        return indices.tensor_split(self.world_size)[self.rank] if self.distributed else indices

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean_across_ranks(self, values: dict[str, float]) -> dict[str, float]:
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)  # nccl: on the GPU
        dist.all_reduce(t)
        return {k: float(v) / self.world_size for k, v in zip(keys, t.cpu())}

    def gather(self, obj) -> list:
        """Every rank's `obj` (a JSON-able value), in rank order."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self._owns_group and dist.is_initialized():
            dist.destroy_process_group()


def setup_runtime(device: str = "auto", precision: str = "auto") -> Runtime:
    """Runtime from the config values and, under torchrun, the process-group environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    runtime = Runtime(dev, resolve_precision(precision, dev), rank, world, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        runtime._owns_group = True
    return runtime


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def generator_state(generator: torch.Generator) -> list[int]:
    return generator.get_state().tolist()


def set_generator_state(generator: torch.Generator, state: list[int]) -> None:
    generator.set_state(torch.tensor(state, dtype=torch.uint8))


def global_rng_state() -> dict:
    """Python, numpy and torch global RNG states as JSON-able lists."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(mt), gauss], "numpy": [name, keys.tolist(), pos, has_gauss, cached],
             "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_global_rng_state(state: dict) -> None:
    version, mt, gauss = state["python"]
    random.setstate((version, tuple(mt), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


# Resumable training state: nested dicts/lists whose tensors go to safetensors files (model
# weights apart from the rest) and whose other values go to state.json. No pickle anywhere.
STATE_FORMAT = 1


def _flatten(obj, prefix: str, tensors: dict):
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):  # keys keep their type (optimiser state is keyed by int)
        return {"__items__": [[k, _flatten(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"train state entry {prefix} has unsupported type {type(obj).__name__}")


def _unflatten(obj, tensors: dict):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        return {k: _unflatten(v, tensors) for k, v in obj["__items__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_train_state(directory, state: dict) -> None:
    """Write `state` (with "model": state dict) to `directory` atomically: a crash while writing
    leaves the previous state in place."""
    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    structure = _flatten(state, "state", tensors)
    new, old = directory.with_name(directory.name + ".new"), directory.with_name(directory.name + ".old")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    model = {k: v for k, v in tensors.items() if k.startswith("state.model.")}
    save_file(model, str(new / "model.safetensors"))
    save_file({k: v for k, v in tensors.items() if k not in model}, str(new / "state.safetensors"))
    (new / "state.json").write_text(json.dumps({"format": STATE_FORMAT, "state": structure}) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    new.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def load_train_state(directory) -> dict:
    directory = Path(directory)
    if not (directory / "state.json").is_file():
        old = directory.with_name(directory.name + ".old")  # interrupted between the two renames
        if (old / "state.json").is_file():
            directory = old
        else:
            raise FileNotFoundError(f"{directory}: no training state to resume from (state.json missing)")
    meta = json.loads((directory / "state.json").read_text())
    if meta.get("format") != STATE_FORMAT:
        raise ValueError(f"{directory}/state.json: format {meta.get('format')!r}, expected {STATE_FORMAT}")
    tensors = {**load_file(str(directory / "model.safetensors")),
               **load_file(str(directory / "state.safetensors"))}
    return _unflatten(meta["state"], tensors)


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 over the model's state dict (names and bytes), to compare weights across processes."""
    h = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def write_digest(model: torch.nn.Module, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(weights_digest(model) + "\n")
