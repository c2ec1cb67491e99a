"""Configuration of the Franka RGB-D grasping model (a dataclass, stored as config.json)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ImageInputConfig:
    """Size the encoders see; preprocessing resizes every camera to it."""

    width: int = 128
    height: int = 128

    def __post_init__(self):
        for name in ("width", "height"):
            value = getattr(self, name)
            if value < 16 or value % 4:
                raise ValueError(f"{name}={value} must be a multiple of 4 and at least 16")


@dataclass
class DepthRangeConfig:
    """Valid depth range in metres; returns outside it count as holes."""

    min_m: float = 0.1
    max_m: float = 3.0

    def __post_init__(self):
        if not 0.0 < self.min_m < self.max_m:
            raise ValueError(f"need 0 < min_m < max_m, got min_m={self.min_m}, max_m={self.max_m}")


@dataclass
class GraspModelConfig:
    """Architecture of the RGB-D grasp VLA: encoders -> spatial fusion -> language FiLM -> head."""

    image: ImageInputConfig = field(default_factory=ImageInputConfig)
    depth_range: DepthRangeConfig = field(default_factory=DepthRangeConfig)
    rgb_channels: int = 32
    depth_channels: int = 16
    fused_channels: int = 64
    language_encoder: str = "all-MiniLM-L6-v2"
    language_dim: int = 384
    max_gripper_width_m: float = 0.08
    modalities: tuple[str, ...] = ("rgb", "depth")

    def __post_init__(self):
        for name in ("rgb_channels", "depth_channels", "fused_channels", "language_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.max_gripper_width_m <= 0.2:
            raise ValueError(f"max_gripper_width_m={self.max_gripper_width_m} outside (0, 0.2]")
        unknown = set(self.modalities) - {"rgb", "depth"}
        if unknown:
            raise ValueError(f"modalities {sorted(unknown)} are not supported by the grasp model")

    @property
    def feature_stride(self) -> int:
        """Encoders downsample the image by this factor."""
        return 4

    @property
    def feature_size(self) -> tuple[int, int]:
        return self.image.height // self.feature_stride, self.image.width // self.feature_stride

    def to_dict(self) -> dict:
        data = asdict(self)
        data["modalities"] = list(self.modalities)
        return data
