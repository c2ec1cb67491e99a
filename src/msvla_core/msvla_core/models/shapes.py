"""Shapes of the tensors that travel between nodes, derived from a model config, so nodes can
reject a malformed or foreign feature before it reaches a model component."""
from __future__ import annotations

from .config import GraspModelConfig

# A dimension of None matches any size (token counts of encoders with variable output).
Shape = tuple[int | None, ...]


def checkpoint_modalities(config) -> list[str]:
    if isinstance(config, GraspModelConfig):
        return list(config.modalities)
    return list(config.encoders)


def expected_feature_shape(config, modality: str) -> Shape:
    """SensorFeature shape an encoder of this checkpoint publishes."""
    if isinstance(config, GraspModelConfig):
        fh, fw = config.feature_size
        channels = {"rgb": config.rgb_channels, "depth": config.depth_channels + 4}[modality]
        return channels, fh, fw
    return None, config.d_model


def expected_fused_shape(config) -> Shape:
    if isinstance(config, GraspModelConfig):
        fh, fw = config.feature_size
        return config.fused_channels + 4, fh, fw
    return None, config.d_model


def shape_matches(shape: tuple[int, ...], expected: Shape) -> bool:
    return len(shape) == len(expected) and all(e is None or s == e for s, e in zip(shape, expected))


def describe_shape(expected: Shape) -> str:
    return "[" + ", ".join("N" if e is None else str(e) for e in expected) + "]"
