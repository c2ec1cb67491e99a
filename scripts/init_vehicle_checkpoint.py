"""Write the vehicle checkpoint models/vehicle_multisensor (deterministic, safetensors only).

    python scripts/init_vehicle_checkpoint.py                 # writes models/vehicle_multisensor
    python scripts/init_vehicle_checkpoint.py --check         # rebuilds in memory, compares model ids

Builds the multi-sensor VLA of config/models/vehicle_multisensor.yaml (front camera, LiDAR, radar
and IMU encoders -> cross-modal transformer fusion -> language conditioning -> vehicle control +
trajectory heads), seeds torch and saves it with msvla_core.models.checkpoint.save_pretrained: one
safetensors file per component (encoder.camera, encoder.lidar, encoder.radar, encoder.imu, fusion,
policy) plus config.json. No pickles. The same torch version on the same kind of CPU gives the same
weights and therefore the same model id.

THIS IS AN UNTRAINED INITIALISATION ("trained": false in config.json). It exists so that the
vehicle graph (config/graphs/vehicle_multisensor.yaml) can be brought up, wired and timed end to end
before a trained checkpoint is available; a trained one replaces it later, in the same directory and
format. Its steering/throttle/brake proposals are arbitrary (though within the heads' hard output
ranges). What keeps the vehicle safe meanwhile is the vehicle safety shield
(msvla_safety vehicle_shield, config/safety/vehicle.yaml), the only node that commands the vehicle: it
limits steering, steering rate, acceleration, jerk and speed, makes brake win over throttle, and brakes
for obstacles in the corridor and whenever an input goes silent. Do not drive a real vehicle with it.

Measured on the 2-core development machine (1 torch thread, a training job running at the same time):
about 3.6 MB on disk, and roughly 13 ms for one full forward pass (all four encoders + fusion + policy;
the policy alone, which the VLA node runs per fused observation, about 1.5 ms).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from msvla_core.config import from_dict, load_yaml
from msvla_core.models.checkpoint import save_pretrained, verify
from msvla_core.models.vla import MultiSensorVLA
from msvla_core.models.vla_config import VLAConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "models" / "vehicle_multisensor.yaml"
OUTPUT = ROOT / "models" / "vehicle_multisensor"
SEED = 0


def build(config_path: Path, seed: int) -> MultiSensorVLA:
    config = from_dict(VLAConfig, load_yaml(config_path), where=str(config_path))
    torch.manual_seed(seed)
    return MultiSensorVLA(config).eval()


def write(model: MultiSensorVLA, output: Path, config_path: Path, seed: int) -> str:
    output.mkdir(parents=True, exist_ok=True)
    keep = {f"{name}.safetensors" for name in model.component_names()}
    for stale in output.glob("*.safetensors"):  # a component renamed since the last run
        if stale.name not in keep:
            stale.unlink()
    try:
        source = str(config_path.resolve().relative_to(ROOT))
    except ValueError:
        source = str(config_path)
    return save_pretrained(model, output, extra={
        "trained": False, "seed": seed, "model_config": source,
        "command": "python scripts/init_vehicle_checkpoint.py",
        "note": "untrained initialisation for bring-up; the vehicle safety shield keeps it safe"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help="model config YAML")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="checkpoint directory to write")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true",
                        help="do not write: rebuild into a temporary directory and compare model ids")
    args = parser.parse_args(argv)
    model = build(args.config, args.seed)
    if args.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            fresh = write(model, Path(tmp), args.config, args.seed)
        stored = verify(args.output)
        print(f"{args.output}: model_id {stored}; rebuilt: {fresh}")
        return 0 if stored == fresh else 1
    model_id = write(model, args.output, args.config, args.seed)
    size = sum(p.stat().st_size for p in args.output.iterdir() if p.is_file())
    print(f"wrote {args.output} (model_id {model_id}, {size / 1e6:.2f} MB, untrained, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
