"""rgb_encoder: sensor_msgs/Image (colour) -> msvla_msgs/SensorFeature (modality "rgb")."""
from __future__ import annotations

import time

from sensor_msgs.msg import Image

from msvla_core.data.image import ImageFormatError, image_to_rgb
from msvla_ros.main import run

from .feature_node import FeatureEncoderNode


class RgbEncoderNode(FeatureEncoderNode):
    modality = "rgb"

    def __init__(self):
        super().__init__("rgb_encoder")
        self.create_subscription(Image, "/camera/color/image_raw", self.on_image, self.sensor_qos)

    def on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        try:
            rgb = image_to_rgb(msg)
        except ImageFormatError as exc:
            self.drops.drop("malformed_image", str(exc))
            return
        self.encode_and_publish(msg.header, rgb, started)


def main(args=None) -> int:
    return run(RgbEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
