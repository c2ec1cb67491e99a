"""Checkpoint directories: config.json plus one safetensors file per component (no pickles).

Each node loads only the component it runs. The model id is a digest of the component weights, so
every node, and the safety shield, can tell which checkpoint produced a feature or an action.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..config import ConfigError, from_dict
from .config import GraspModelConfig
from .grasp_vla import COMPONENTS, GraspVLA

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete, corrupt or of another model type."""


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def save_pretrained(model: GraspVLA, directory: str | Path, extra: dict | None = None) -> str:
    """Write the checkpoint; returns its model id."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for name in COMPONENTS:
        module = getattr(model, name)
        tensors = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        path = directory / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"component": name})
        path.chmod(0o644)  # safetensors writes 0600; every node must be able to read the weights
        files.append(path)
    model_id = _digest(files)
    meta = {"format_version": FORMAT_VERSION, "model_type": GraspVLA.model_type, "model_id": model_id,
            "components": {name: f"{name}.safetensors" for name in COMPONENTS},
            "config": model.config.to_dict(), **(extra or {})}
    (directory / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    return model_id


def read_config(directory: str | Path) -> tuple[GraspModelConfig, dict]:
    """Parse and validate config.json; returns the model config and the raw metadata."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{path} not found: not a checkpoint directory")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc
    if meta.get("model_type") != GraspVLA.model_type:
        raise CheckpointError(f"{path}: model_type={meta.get('model_type')!r}, expected {GraspVLA.model_type!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version={meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        config = from_dict(GraspModelConfig, meta.get("config", {}), where=f"{path}: config")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    return config, meta


def load_component(directory: str | Path, name: str) -> tuple[torch.nn.Module, GraspModelConfig, str]:
    """Load one component (e.g. "rgb_encoder") in eval mode; returns (module, config, model_id)."""
    if name not in COMPONENTS:
        raise CheckpointError(f"unknown component {name!r}; expected one of {COMPONENTS}")
    config, meta = read_config(directory)
    model = GraspVLA(config)
    module = getattr(model, name)
    path = Path(directory) / meta["components"][name]
    if not path.is_file():
        raise CheckpointError(f"{path} not found (component {name!r} of checkpoint {meta['model_id']})")
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for damaged files
        raise CheckpointError(f"{path}: cannot read safetensors ({exc})") from exc
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({exc})") from exc
    return module.eval(), config, meta["model_id"]


def verify(directory: str | Path) -> str:
    """Recompute the model id from the weight files and compare with config.json."""
    _, meta = read_config(directory)
    files = [Path(directory) / meta["components"][name] for name in COMPONENTS]
    actual = _digest(files)
    if actual != meta["model_id"]:
        raise CheckpointError(f"{directory}: weights digest {actual} != model_id {meta['model_id']} in config.json")
    return actual


def load_pretrained(directory: str | Path) -> GraspVLA:
    config, meta = read_config(directory)
    model = GraspVLA(config)
    for name in COMPONENTS:
        module, _, _ = load_component(directory, name)
        getattr(model, name).load_state_dict(module.state_dict())
    model.model_id = meta["model_id"]
    return model.eval()
