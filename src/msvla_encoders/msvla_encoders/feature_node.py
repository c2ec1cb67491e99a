"""Shared part of the encoder nodes: load this sensor's encoder component, preprocess and encode
one raw sample with it, publish the SensorFeature with the source stamp, count drops."""
from __future__ import annotations

import time

import numpy as np
import torch
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from msvla_core.data.features import array_to_feature_fields
from msvla_core.params import ParamSpec
from msvla_msgs.msg import SensorFeature
from msvla_ros.component import MODEL_PARAMS, load_for_node
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter, FlowStats, age_ms
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import FEATURE
from msvla_ros.qos_events import PolledQosEvents


class FeatureEncoderNode(PolledQosEvents, Node):
    """Base of the encoder nodes; subclasses subscribe, convert messages to the raw sample their
    encoder's `preprocess` takes, and call `encode_and_publish`."""

    modality = ""
    default_queue_depth = 5

    extra_params: tuple[ParamSpec, ...] = ()  # the subclass's own parameters

    def __init__(self, name: str, **node_kwargs):
        super().__init__(name, **node_kwargs)
        self.values = declare_parameters(self, self.parameter_specs())
        self.sensor_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.values["queue_depth"],
            durability=DurabilityPolicy.VOLATILE,
            reliability=ReliabilityPolicy.RELIABLE if self.values["reliability"] == "reliable"
            else ReliabilityPolicy.BEST_EFFORT)
        self.rate_skipped = 0
        self._last_encode = -float("inf")
        self.feature_name = self.values["modality"]
        self.encoder, self.model_config, self.model_id = load_for_node(
            self, self.values, f"encoder.{self.feature_name}")
        self.drops = DropCounter(self)
        self.published = 0
        self.flow = FlowStats()
        self.feature_pub = self.create_publisher(SensorFeature, f"/msvla/features/{self.feature_name}", FEATURE)
        self.diagnostics = Diagnostics(self, f"encoder/{self.feature_name}", self._report)

    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return MODEL_PARAMS + [
            ParamSpec("modality", cls.modality, "Key of this sensor in the checkpoint (component "
                      "encoder.<modality>) and in the feature topic /msvla/features/<modality>."),
            ParamSpec("reliability", "best_effort", "QoS reliability of the sensor subscription "
                      "(best_effort matches the sensor_data profile of drivers).",
                      choices=("best_effort", "reliable")),
            ParamSpec("queue_depth", cls.default_queue_depth, "QoS history depth of the sensor subscription.",
                      min=1, max=10000),
            ParamSpec("max_rate_hz", 0.0, "Encode at most this many messages per second (0: every message); "
                      "the rest are skipped and counted.", unit="Hz", min=0.0, max=1000.0),
        ] + list(cls.extra_params)

    def encode_and_publish(self, header, raw, started: float) -> None:
        max_rate = self.values["max_rate_hz"]
        if max_rate > 0.0 and started - self._last_encode < 1.0 / max_rate:
            self.rate_skipped += 1  # intended throttling, reported in diagnostics, not an error
            return
        self._last_encode = started
        self.flow.received(self.feature_name)
        try:
            inputs = self.encoder.preprocess(raw)
        except ValueError as exc:  # preprocessing names the unusable field or value
            self.drops.drop("bad_input", str(exc))
            return
        batch = {k: torch.from_numpy(np.ascontiguousarray(v))[None] for k, v in inputs.items()}
        with torch.inference_mode():
            feature = self.encoder(**batch)[0].numpy()
        msg = SensorFeature(header=header, modality=self.feature_name, component_id=self.model_id,
                            **array_to_feature_fields(feature))
        self.feature_pub.publish(msg)
        self.published += 1
        self.flow.published((time.perf_counter() - started) * 1e3, age_ms(self, header.stamp))

    def _report(self):
        values = {"published": self.published, "rate_skipped": self.rate_skipped,
                  **{f"dropped.{k}": v for k, v in self.drops.items()}}
        values.update(self.flow.values())
        level = WARN if self.drops else OK
        return level, "dropping inputs" if self.drops else "ok", values
