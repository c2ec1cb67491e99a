"""tactile_encoder: tactile sensor messages -> SensorFeature ("tactile").

What is subscribed depends on the checkpoint's tactile encoder type:
- tactile_grid: sensor_msgs/Image 32FC1, pressure in kPa per taxel, on /tactile/pressure. Several
  pads (Params.sensors > 1) come as one image with the pads stacked vertically (sensors * H rows).
- tactile_gelsight: sensor_msgs/Image rgb8 or bgr8 from the gel camera on /tactile/image.
- tactile_biotac: std_msgs/Float32MultiArray with the feature vector (electrode impedances, PDC,
  TAC; see the encoder) on /tactile/biotac. The message has no header, so the feature is stamped
  with this node's clock on arrival.
"""
from __future__ import annotations

import time

import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Float32MultiArray, Header

from msvla_core.data.image import ImageFormatError, image_to_array, image_to_rgb
from msvla_ros.main import run

from .feature_node import FeatureEncoderNode

GELSIGHT_ENCODINGS = ("rgb8", "bgr8")


class TactileEncoderNode(FeatureEncoderNode):
    modality = "tactile"

    def __init__(self, **node_kwargs):
        super().__init__("tactile_encoder", **node_kwargs)
        self.encoder_type = type(self.encoder).type_name
        subscriptions = {
            "tactile_grid": (Image, "/tactile/pressure", self.on_pressure),
            "tactile_gelsight": (Image, "/tactile/image", self.on_gel_image),
            "tactile_biotac": (Float32MultiArray, "/tactile/biotac", self.on_biotac),
        }
        if self.encoder_type not in subscriptions:
            raise ValueError(f"encoder.{self.feature_name} of the checkpoint has type "
                             f"{self.encoder_type!r}; tactile_encoder supports {sorted(subscriptions)}")
        msg_type, topic, callback = subscriptions[self.encoder_type]
        self.create_subscription(msg_type, topic, callback, self.sensor_qos)
        self.get_logger().info(f"{self.encoder_type}: subscribed to {topic}")

    def on_pressure(self, msg: Image) -> None:
        started = time.perf_counter()
        if msg.encoding != "32FC1":
            self.drops.drop("malformed_tactile", f"Image.encoding={msg.encoding!r}; pressure grids "
                                                 f"must be 32FC1 (kPa)")
            return
        try:
            pressure = image_to_array(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_tactile", str(exc))
            return
        p = self.encoder.params
        if p.sensors > 1 and pressure.shape == (p.sensors * p.grid_size[0], p.grid_size[1]):
            pressure = pressure.reshape(p.sensors, *p.grid_size)
        self.encode_and_publish(msg.header, pressure, started)

    def on_gel_image(self, msg: Image) -> None:
        started = time.perf_counter()
        if msg.encoding not in GELSIGHT_ENCODINGS:
            self.drops.drop("malformed_tactile", f"Image.encoding={msg.encoding!r}; GelSight images "
                                                 f"must be one of {', '.join(GELSIGHT_ENCODINGS)}")
            return
        try:
            rgb = image_to_rgb(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_tactile", str(exc))
            return
        self.encode_and_publish(msg.header, rgb, started)

    def on_biotac(self, msg: Float32MultiArray) -> None:
        started = time.perf_counter()
        header = Header(stamp=self.get_clock().now().to_msg())
        self.encode_and_publish(header, np.asarray(msg.data, dtype=np.float32), started)


def main(args=None) -> int:
    return run(TactileEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
