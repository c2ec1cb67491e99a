"""Write a freshly initialised checkpoint (seeded): `python -m msvla_core.models.init_checkpoint DIR`."""
from __future__ import annotations

import argparse

import torch

from ..config import load_config
from .checkpoint import save_pretrained
from .config import GraspModelConfig
from .grasp_vla import GraspVLA


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", help="checkpoint directory to write")
    parser.add_argument("--config", help="model config YAML (default: GraspModelConfig defaults)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    config = load_config(GraspModelConfig, args.config) if args.config else GraspModelConfig()
    model_id = save_pretrained(GraspVLA(config), args.output, extra={"trained": False, "seed": args.seed})
    print(f"wrote {args.output} (model_id {model_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
