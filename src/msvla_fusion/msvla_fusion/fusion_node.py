"""fusion_node: SensorFeature streams -> ApproximateSynchronizer -> fusion module -> FusedObservation."""
from __future__ import annotations

import time

import torch
from rclpy.node import Node

from msvla_core.data.features import FeatureFormatError, array_to_feature_fields, feature_to_array
from msvla_core.models.fusion import accepted_feature_shapes
from msvla_core.models.shapes import checkpoint_modalities, describe_shape, expected_feature_shape, shape_matches
from msvla_core.params import ParamSpec
from msvla_core.sync import ApproximateSynchronizer, StreamSpec
from msvla_msgs.msg import FusedObservation, SensorFeature
from msvla_ros.component import MODEL_PARAMS, load_for_node
from msvla_ros.diagnostics import OK, WARN, Diagnostics, DropCounter, FlowStats, age_ms
from msvla_ros.main import run
from msvla_ros.messages import ns_to_stamp, stamp_to_ns
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import FEATURE
from msvla_ros.qos_events import PolledQosEvents

PARAMS = MODEL_PARAMS + [
    ParamSpec("modalities", ["rgb", "depth"], "Feature streams to fuse (/msvla/features/<modality>)."),
    ParamSpec("reference_modality", "rgb", "Stream whose stamps decide the output rate."),
    ParamSpec("slop_s", 0.02, "Largest stamp difference for two features to be matched.", unit="s",
              min=0.0, max=1.0),
    ParamSpec("timeout_s", 0.5, "A stream silent for longer than this is reported missing.", unit="s",
              min=0.01, max=10.0),
    ParamSpec("queue_size", 10, "Features kept per stream while waiting for a match.", min=1, max=1000),
]


class FusionNode(PolledQosEvents, Node):
    @classmethod
    def parameter_specs(cls) -> list[ParamSpec]:
        return list(PARAMS)

    def __init__(self, **node_kwargs):
        super().__init__("fusion_node", **node_kwargs)
        values = declare_parameters(self, self.parameter_specs())
        self.fusion, self.config, self.model_id = load_for_node(self, values, "fusion")
        modalities = values["modalities"]
        reference = values["reference_modality"]
        known = checkpoint_modalities(self.config)
        unknown = set(modalities) - set(known)
        if unknown or reference not in modalities:
            raise ValueError(f"parameter modalities={modalities} / reference_modality={reference!r}: the "
                             f"checkpoint has encoders for {known} and the reference must be one of them")
        self.expected_shapes = {m: expected_feature_shape(self.config, m) for m in modalities}
        self.accepted_shapes = {m: accepted_feature_shapes(self.config, m) for m in modalities}
        timeout_ns = int(values["timeout_s"] * 1e9)
        specs = {m: StreamSpec(m, queue_size=values["queue_size"], timeout_ns=timeout_ns) for m in modalities}
        self.sync = ApproximateSynchronizer(specs.pop(reference), list(specs.values()),
                                            slop_ns=int(values["slop_s"] * 1e9))
        self.drops = DropCounter(self)
        self.published = 0
        self.flow = FlowStats()
        self.pub = self.create_publisher(FusedObservation, "/msvla/fused", FEATURE)
        for m in modalities:
            self.create_subscription(SensorFeature, f"/msvla/features/{m}",
                                     lambda msg, m=m: self.on_feature(m, msg), FEATURE)
        self.create_timer(0.05, self.on_timer)
        self.diagnostics = Diagnostics(self, "fusion", self._report)

    def on_feature(self, modality: str, msg: SensorFeature) -> None:
        self.flow.received(modality)
        if msg.modality != modality:
            self.drops.drop("wrong_modality", f"SensorFeature.modality={msg.modality!r} on the {modality} topic")
            return
        if msg.component_id != self.model_id:
            self.drops.drop("checkpoint_mismatch", f"SensorFeature.component_id={msg.component_id!r} "
                                                   f"but fusion runs checkpoint {self.model_id!r}")
            return
        try:
            feature = feature_to_array(msg)
        except FeatureFormatError as exc:
            self.drops.drop("malformed_feature", f"{modality}: {exc}")
            return
        if not any(shape_matches(feature.shape, e) for e in self.accepted_shapes[modality]):
            expected = " or ".join(describe_shape(e) for e in self.accepted_shapes[modality])
            self.drops.drop("wrong_shape", f"{modality}: SensorFeature.shape={list(feature.shape)}, "
                                           f"expected {expected}")
            return
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns = stamp_to_ns(msg.header.stamp)
        sets = self.sync.add(modality, stamp_ns, (msg.header.frame_id, feature), now_ns)
        if self.sync.last_drop:
            self.drops.drop(self.sync.last_drop, f"{modality}: header.stamp {stamp_ns} ns rejected by the "
                                                 f"synchroniser ({self.sync.last_drop})")
        self._emit(sets)

    def on_timer(self) -> None:
        self._emit(self.sync.advance(self.get_clock().now().nanoseconds))

    def _emit(self, sets) -> None:
        for synced in sets:
            started = time.perf_counter()
            present = [m for m in self.sync.stream_names if m in synced.items]  # reference first
            features = {m: torch.from_numpy(synced.items[m][1][1])[None] for m in present}
            try:
                with torch.inference_mode():
                    fused = self.fusion(features, None)[0].numpy()
            except (ValueError, KeyError, RuntimeError) as exc:
                self.drops.drop("fusion_failed", f"set at {synced.reference_stamp_ns} ns: {exc}")
                continue
            msg = FusedObservation(modalities=present, component_id=self.model_id,
                                   ages=[synced.age_s(m) for m in present], **array_to_feature_fields(fused))
            msg.header.stamp = ns_to_stamp(synced.reference_stamp_ns)
            msg.header.frame_id = synced.items[self.sync.reference.name][1][0]
            self.pub.publish(msg)
            self.published += 1
            self.flow.published((time.perf_counter() - started) * 1e3, age_ms(self, msg.header.stamp))
            if synced.missing:
                self.get_logger().warn(f"fused without {list(synced.missing)} (silent or no match within slop)",
                                       throttle_duration_sec=2.0)

    def _report(self):
        values = {"published": self.published, **{f"sync.{k}": v for k, v in self.sync.counters().items()},
                  **{f"dropped.{k}": v for k, v in self.drops.items()}}
        values.update(self.flow.values())
        return (WARN if self.drops else OK), ("dropping inputs" if self.drops else "ok"), values


def main(args=None) -> int:
    return run(FusionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
