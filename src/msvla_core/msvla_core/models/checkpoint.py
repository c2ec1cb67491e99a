"""Checkpoint directories: config.json plus one safetensors file per component (no pickles).

Each node loads only the component it runs. The model id is a digest of the component weights, so
every node, and the safety shield, can tell which checkpoint produced a feature or an action.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import ConfigError

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete, corrupt or of another model type."""


# Imported on demand: a node running the grasp model does not import the whole block library.
MODEL_TYPES = {"grasp_rgbd": ("msvla_core.models.grasp_vla", "GraspVLA"),
               "multisensor_vla": ("msvla_core.models.vla", "MultiSensorVLA")}


def model_class(model_type: str) -> type:
    module, name = MODEL_TYPES[model_type]
    return getattr(importlib.import_module(module), name)


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def save_pretrained(model: torch.nn.Module, directory: str | Path, extra: dict | None = None) -> str:
    """Write the checkpoint; returns its model id."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name in model.component_names():
        tensors = {k: v.detach().contiguous().cpu() for k, v in model.component(name).state_dict().items()}
        path = directory / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"component": name})
        path.chmod(0o644)  # safetensors writes 0600; every node must be able to read the weights
        files[name] = path
    model_id = _digest(list(files.values()))
    meta = {"format_version": FORMAT_VERSION, "model_type": model.model_type, "model_id": model_id,
            "components": {name: path.name for name, path in files.items()},
            "config": model.config.to_dict(), **(extra or {})}
    (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return model_id


def read_config(directory: str | Path) -> tuple[torch.nn.Module, dict]:
    """Parse and validate config.json; returns a freshly initialised model and the metadata."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path} not found: not a checkpoint directory")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc
    if meta.get("model_type") not in MODEL_TYPES:
        raise CheckpointError(f"{path}: model_type={meta.get('model_type')!r}, expected one of {sorted(MODEL_TYPES)}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version={meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        model = model_class(meta["model_type"]).from_config_dict(meta.get("config", {}), where=f"{path}: config")
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(str(exc)) from exc
    missing = set(model.component_names()) - set(meta.get("components", {}))
    if missing:
        raise CheckpointError(f"{path}: components {sorted(missing)} are not listed")
    return model, meta


def _load_into(module: torch.nn.Module, path: Path, name: str, model_id: str) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path} not found (component {name!r} of checkpoint {model_id})")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{path}: cannot read safetensors ({exc})") from exc
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({exc})") from exc


def load_component(directory: str | Path, name: str):
    """Load one component (e.g. "rgb_encoder", "encoder.lidar", "fusion") in eval mode;
    returns (module, model config, model_id)."""
    model, meta = read_config(directory)
    if name not in model.component_names():
        raise CheckpointError(f"unknown component {name!r}; this checkpoint has {model.component_names()}")
    module = model.component(name)
    _load_into(module, Path(directory) / meta["components"][name], name, meta["model_id"])
    return module.eval(), model.config, meta["model_id"]


def verify(directory: str | Path) -> str:
    """Recompute the model id from the weight files and compare with config.json."""
    model, meta = read_config(directory)
    files = [Path(directory) / meta["components"][name] for name in model.component_names()]
    actual = _digest(files)
    if actual != meta["model_id"]:
        raise CheckpointError(f"{directory}: weights digest {actual} != model_id {meta['model_id']} in config.json")
    return actual


def load_pretrained(directory: str | Path) -> torch.nn.Module:
    model, meta = read_config(directory)
    for name in model.component_names():
        _load_into(model.component(name), Path(directory) / meta["components"][name], name, meta["model_id"])
    model.model_id = meta["model_id"]
    return model.eval()
