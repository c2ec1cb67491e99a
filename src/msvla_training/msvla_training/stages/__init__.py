"""Training stages of msvla-train by the name the config uses, and their parameter parsing."""
from __future__ import annotations

from msvla_core.config import ConfigError, from_dict

from .align import Align
from .base import Stage, StageRandom
from .drive import DriveFinetune, DriveFusion, DriveRobustness
from .finetune import Finetune
from .fusion import Fusion
from .pretrain_depth import PretrainDepth
from .pretrain_rgb import PretrainRgb
from .robustness import Robustness

STAGES: dict[str, type[Stage]] = {cls.name: cls for cls in (PretrainRgb, PretrainDepth, Align, Fusion,
                                                             Finetune, Robustness, DriveFusion, DriveFinetune,
                                                             DriveRobustness)}


def stage_class(name: str) -> type[Stage]:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    return STAGES[name]


def stage_names() -> list[str]:
    return list(STAGES)


def parse_params(name: str, params: dict | None, where: str):
    """The stage's Params dataclass from a config mapping; errors name `where` and the key."""
    try:
        return from_dict(stage_class(name).Params, params or {}, where)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def benchmark_stage(*args, **kwargs):
    """See stages.benchmark.benchmark_stage (imported lazily: it needs the runner)."""
    from .benchmark import benchmark_stage as run
    return run(*args, **kwargs)


__all__ = ["STAGES", "Stage", "StageRandom", "benchmark_stage", "parse_params", "stage_class", "stage_names"]
