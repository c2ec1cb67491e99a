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

# Stages per task: the grasp stages train GraspVLA, the driving stages a MultiSensorVLA with control
# and trajectory heads (TrainConfig.task).
TASK_STAGES: dict[str, tuple[type[Stage], ...]] = {
    "grasp": (PretrainRgb, PretrainDepth, Align, Fusion, Finetune, Robustness),
    "drive": (DriveFusion, DriveFinetune, DriveRobustness),
}
STAGES: dict[str, type[Stage]] = {cls.name: cls for group in TASK_STAGES.values() for cls in group}


def stage_class(name: str) -> type[Stage]:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}")
    return STAGES[name]


def stage_names(task: str | None = None) -> list[str]:
    """Stage names in chain order, of one task ("grasp", "drive") or of all."""
    return [cls.name for group, classes in TASK_STAGES.items() if task in (None, group) for cls in classes]


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


__all__ = ["STAGES", "TASK_STAGES", "Stage", "StageRandom", "benchmark_stage", "parse_params", "stage_class", "stage_names"]
