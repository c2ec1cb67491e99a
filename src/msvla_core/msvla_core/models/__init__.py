"""Models of the multi-sensor VLA (torch); configs are dataclasses, checkpoints are safetensors."""
from .config import GraspModelConfig
from .grasp_vla import COMPONENTS, GraspVLA
from .heads import GraspPrediction

__all__ = ["COMPONENTS", "GraspModelConfig", "GraspPrediction", "GraspVLA"]
