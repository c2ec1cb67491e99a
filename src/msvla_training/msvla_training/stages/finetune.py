"""Stage finetune: the grasp task loss on all modalities, usually at a lower learning rate.

Its parameters are the fusion stage's input-mode weights with RGB-D alone by default; the
learning rate, like every stage's, comes from the stage's entry in the config.
"""
from __future__ import annotations

from dataclasses import dataclass

from .fusion import Fusion
from .fusion import Params as FusionParams


@dataclass
class Params(FusionParams):
    rgbd: float = 1.0
    rgb_only: float = 0.0
    depth_only: float = 0.0


class Finetune(Fusion):
    name = "finetune"
    Params = Params
