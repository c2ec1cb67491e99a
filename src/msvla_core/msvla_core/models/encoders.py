"""Per-sensor encoders: each maps one preprocessed sensor input to a spatial feature map."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..geometry import CameraModel
from ..preprocessing import PreprocessingError, plane_geometry, prepare_depth, prepare_rgb
from .config import GraspModelConfig


def conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    groups = 8 if cout % 8 == 0 else 1
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.GroupNorm(groups, cout), nn.ReLU(inplace=True))


class SmallConvEncoder(nn.Module):
    """Three conv blocks, stride 4 overall: (B, cin, H, W) -> (B, cout, H/4, W/4)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(cout // 2, 8)
        self.layers = nn.Sequential(conv_block(cin, mid, 2), conv_block(mid, cout, 2),
                                    conv_block(cout, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class RgbEncoder(nn.Module):
    """Normalised RGB (B, 3, H, W) -> appearance features (B, rgb_channels, H/4, W/4).

    Given base-frame geometry (B, 4, H/4, W/4) - for a camera without depth, the table plane seen
    through each cell (preprocessing.plane_geometry) - it is appended after the learned channels,
    as DepthEncoder does, so an RGB-only graph can still place grasps. It adds no weights.
    """

    modality = "rgb"
    geometry_channels = 4

    def __init__(self, config: GraspModelConfig):
        super().__init__()
        self.config = config
        self.net = SmallConvEncoder(3, config.rgb_channels)

    def preprocess(self, rgb, camera: CameraModel | None = None, camera_to_base: np.ndarray | None = None,
                   plane_z: float | None = None) -> dict[str, np.ndarray]:
        """(H, W, 3) uint8 RGB -> {"image": (3, h, w)}, plus {"geometry": (4, h/4, w/4)} of the
        plane z = plane_z (default 0) when the camera and its pose are given. `rgb` may also be the
        raw sample the encoder node passes: a dict with "rgb" and those keyword names."""
        if isinstance(rgb, dict):
            raw = rgb
            if "rgb" not in raw:
                raise PreprocessingError(f"raw RGB sample has keys {sorted(raw)} but no 'rgb' image")
            rgb, camera, camera_to_base = raw["rgb"], raw.get("camera"), raw.get("camera_to_base")
            plane_z = raw.get("plane_z")
        out = {"image": prepare_rgb(rgb, self.config)}
        if camera is None and camera_to_base is None:
            return out
        if camera is None or camera_to_base is None:
            missing = "camera" if camera is None else "camera_to_base"
            raise PreprocessingError(f"plane geometry needs both the camera intrinsics and camera_to_base; "
                                     f"{missing} is missing")
        if rgb.shape[:2] != (camera.height, camera.width):
            raise PreprocessingError(f"RGB image is {rgb.shape[1]}x{rgb.shape[0]} but CameraInfo says "
                                     f"{camera.width}x{camera.height}")
        out["geometry"] = plane_geometry(camera, camera_to_base, self.config,
                                         0.0 if plane_z is None else plane_z)
        return out

    def forward(self, image: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        features = self.net(image)
        return features if geometry is None else torch.cat([features, geometry], dim=1)


class DepthEncoder(nn.Module):
    """Range-normalised depth + validity (B, 2, H, W) and base-frame geometry (B, 4, H/4, W/4)
    -> (B, depth_channels + 4, H/4, W/4): learned shape features with the geometry appended, so
    that downstream components can read metric positions of every feature cell."""

    modality = "depth"
    geometry_channels = 4

    def __init__(self, config: GraspModelConfig):
        super().__init__()
        self.config = config
        self.net = SmallConvEncoder(2, config.depth_channels)

    def preprocess(self, raw: dict) -> dict[str, np.ndarray]:
        """{"depth": (H, W) metres, "camera": CameraModel, "camera_to_base": 4x4 (,
        "max_invalid_fraction")} -> {"depth": (2, h, w), "geometry": (4, h/4, w/4)}."""
        depth, geometry = prepare_depth(raw["depth"], raw["camera"], raw["camera_to_base"], self.config,
                                        raw.get("max_invalid_fraction", 0.9))
        return {"depth": depth, "geometry": geometry}

    def forward(self, depth: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(depth), geometry], dim=1)
