"""Checkpoint directories: round trip, per-component loading, and clear errors when damaged."""
import json

import pytest
import torch

from msvla_core.models import COMPONENTS, GraspModelConfig, GraspVLA
from msvla_core.models.checkpoint import CheckpointError, load_component, load_pretrained, save_pretrained, verify


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = GraspVLA(GraspModelConfig()).eval()
    model_id = save_pretrained(model, tmp_path)
    return tmp_path, model, model_id


def test_round_trip_is_exact_and_ids_match(checkpoint):
    path, model, model_id = checkpoint
    assert sorted(p.name for p in path.iterdir()) == sorted(["config.json"] + [f"{c}.safetensors" for c in COMPONENTS])
    assert verify(path) == model_id
    loaded = load_pretrained(path)
    for name in COMPONENTS:
        module, _, mid = load_component(path, name)
        assert mid == model_id
        for (k, a), (_, b) in zip(model.component(name).state_dict().items(), module.state_dict().items()):
            assert torch.equal(a, b), k
    inputs = (torch.randn(1, 384), torch.randn(1, 3, 128, 128), torch.rand(1, 2, 128, 128), torch.rand(1, 4, 32, 32) + 0.5)
    with torch.no_grad():
        assert torch.equal(model(*inputs).position, loaded(*inputs).position)


def test_damaged_checkpoints_give_errors_naming_the_file(checkpoint):
    path, _, _ = checkpoint
    with pytest.raises(CheckpointError, match="unknown component 'tactile_encoder'"):
        load_component(path, "tactile_encoder")
    (path / "policy.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="policy.safetensors"):
        load_component(path, "policy")
    with pytest.raises(CheckpointError, match="digest"):
        verify(path)
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["rgb_chanels"] = 3
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="rgb_chanels"):
        load_component(path, "encoder.rgb")
    with pytest.raises(CheckpointError, match="not a checkpoint directory"):
        load_component(path / "missing", "encoder.rgb")


def test_weights_that_do_not_match_the_config_are_refused(checkpoint):
    path, _, _ = checkpoint
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["rgb_channels"] = 48
    (path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the config"):
        load_component(path, "encoder.rgb")
