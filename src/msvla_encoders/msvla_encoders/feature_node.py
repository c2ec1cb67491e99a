"""Shared part of the encoder nodes: drop accounting, feature publishing, diagnostics."""
from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node

from msvla_core.data.features import array_to_feature_fields
from msvla_msgs.msg import SensorFeature
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter
from msvla_ros.qos import FEATURE


class FeatureEncoderNode(Node):
    """Base of the encoder nodes; subclasses convert their sensor messages and call `publish`."""

    modality = ""

    def __init__(self, name: str):
        super().__init__(name)
        self.drops = DropCounter(self)
        self.published = 0
        self._encode_ms: list[float] = []
        self.feature_pub = self.create_publisher(SensorFeature, f"/msvla/features/{self.modality}", FEATURE)
        self.diagnostics = Diagnostics(self, f"encoder/{self.modality}", self._report)

    def publish(self, header, feature: np.ndarray, component_id: str, started: float) -> None:
        msg = SensorFeature(header=header, modality=self.modality, component_id=component_id,
                            **array_to_feature_fields(feature))
        self.feature_pub.publish(msg)
        self.published += 1
        self._encode_ms.append((time.perf_counter() - started) * 1e3)
        del self._encode_ms[:-200]

    def _report(self):
        values = {"published": self.published, **{f"dropped.{k}": v for k, v in self.drops.items()}}
        if self._encode_ms:
            values["encode_ms_median"] = f"{np.median(self._encode_ms):.2f}"
        level = WARN if self.drops else OK
        return level, "dropping inputs" if self.drops else "ok", values
