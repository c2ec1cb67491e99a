"""The configurable multi-sensor VLA assembled from config/models/*.yaml: forward, split parity,
missing sensors, checkpoint round trip and clear config errors."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from msvla_core.config import ConfigError, from_dict, load_yaml
from msvla_core.models.checkpoint import load_component, load_pretrained, save_pretrained, verify
from msvla_core.models.registry import batch_inputs
from msvla_core.models.vla import MultiSensorVLA
from msvla_core.models.vla_config import VLAConfig

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
from models import synthetic_raw  # noqa: E402  (one generator of example sensor data)


def build(name: str) -> tuple[VLAConfig, MultiSensorVLA]:
    config = from_dict(VLAConfig, load_yaml(ROOT / "config" / "models" / f"{name}.yaml"), where=name)
    torch.manual_seed(0)
    return config, MultiSensorVLA(config).eval()


def example_inputs(config, model, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {name: batch_inputs([model.encoder(name).preprocess(synthetic_raw(block.type, rng, model.encoder(name).params))
                                for _ in range(batch)])
            for name, block in config.encoders.items()}


@pytest.mark.parametrize("name, keys", [("franka_multisensor", {"position", "rotation"}),
                                        ("vehicle_multisensor", {"control.steering", "control.throttle",
                                                                 "control.brake", "trajectory.trajectories"})])
def test_default_configs_build_and_act(name, keys):
    config, model = build(name)
    inputs = example_inputs(config, model)
    with torch.no_grad():
        out = model(inputs, torch.randn(2, config.language.dim))
    assert keys <= set(out), sorted(out)
    assert all(torch.isfinite(v).all() for v in out.values() if v.is_floating_point())


@pytest.mark.parametrize("name", ["franka_multisensor", "vehicle_multisensor"])
def test_split_components_reproduce_the_monolithic_forward(name, tmp_path):
    config, model = build(name)
    save_pretrained(model, tmp_path)
    inputs = example_inputs(config, model, batch=1, seed=3)
    instruction = torch.randn(1, config.language.dim)
    with torch.no_grad():
        reference = model(inputs, instruction)
        tokens = {}
        for modality in config.encoders:  # each encoder node loads only its component
            encoder, _, _ = load_component(tmp_path, f"encoder.{modality}")
            tokens[modality] = encoder(**inputs[modality])
        fusion, _, _ = load_component(tmp_path, "fusion")
        policy, _, _ = load_component(tmp_path, "policy")
        split = policy(fusion(tokens), instruction)
    for key, value in reference.items():
        assert torch.allclose(value.float(), split[key].float(), atol=1e-5), key
    assert verify(tmp_path) == load_pretrained(tmp_path).model_id


def test_a_missing_sensor_still_gives_an_action():
    config, model = build("vehicle_multisensor")
    inputs = example_inputs(config, model, batch=1)
    del inputs["lidar"]
    with torch.no_grad():
        out = model(inputs, torch.randn(1, config.language.dim))
    assert torch.isfinite(out["control.steering"]).all()


def test_config_errors_name_the_key():
    data = load_yaml(ROOT / "config" / "models" / "vehicle_multisensor.yaml")
    data["encoders"]["lidar"]["params"] = {"max_pointz": 10}
    with pytest.raises(ConfigError, match=r"encoders.lidar.params.*max_pointz"):
        MultiSensorVLA(from_dict(VLAConfig, data, where="vehicle"))
    data["encoders"]["lidar"] = {"type": "lidar_quantum"}
    with pytest.raises(ConfigError, match="unknown encoder type 'lidar_quantum'"):
        MultiSensorVLA(from_dict(VLAConfig, data, where="vehicle"))
