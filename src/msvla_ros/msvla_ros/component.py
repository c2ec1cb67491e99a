"""Loading one model component in a node, and the parameters every model node shares."""
from __future__ import annotations

import torch

from msvla_core.models.checkpoint import load_component
from msvla_core.params import ParamSpec
from .paths import resolve_path

DEFAULT_CHECKPOINT = "package://msvla_bringup/models/franka_rgbd"

MODEL_PARAMS = [
    ParamSpec("checkpoint", DEFAULT_CHECKPOINT,
              "Checkpoint directory (config.json + safetensors), or package://<pkg>/<path>."),
    ParamSpec("num_threads", 1, "torch intra-op threads for this node.", min=1, max=64),
]


def load_for_node(node, values: dict, component: str):
    """Load `component` and log what was loaded; errors propagate and stop the node."""
    torch.set_num_threads(values["num_threads"])
    path = resolve_path(values["checkpoint"])
    module, config, model_id = load_component(path, component)
    node.get_logger().info(f"loaded {component} of checkpoint {model_id} from {path}")
    return module, config, model_id
