"""rgb_encoder: sensor_msgs/Image (colour) -> msvla_msgs/SensorFeature (modality "rgb")."""
from __future__ import annotations

import time

import torch
from sensor_msgs.msg import Image

from msvla_core.data.image import ImageFormatError, image_to_rgb
from msvla_core.preprocessing import PreprocessingError, prepare_rgb
from msvla_ros.main import run
from msvla_ros.parameters import declare_parameters
from msvla_ros.qos import SENSOR

from msvla_ros.component import MODEL_PARAMS, load_for_node
from .feature_node import FeatureEncoderNode


class RgbEncoderNode(FeatureEncoderNode):
    modality = "rgb"

    def __init__(self):
        super().__init__("rgb_encoder")
        values = declare_parameters(self, MODEL_PARAMS)
        self.encoder, self.config, self.model_id = load_for_node(self, values, "rgb_encoder")
        self.create_subscription(Image, "/camera/color/image_raw", self.on_image, SENSOR)

    def on_image(self, msg: Image) -> None:
        started = time.perf_counter()
        try:
            x = prepare_rgb(image_to_rgb(msg), self.config)
        except (ImageFormatError, PreprocessingError) as exc:
            self.drops.drop("malformed_image", str(exc))
            return
        with torch.inference_mode():
            feature = self.encoder(torch.from_numpy(x)[None])[0].numpy()
        self.publish(msg.header, feature, self.model_id, started)


def main(args=None) -> int:
    return run(RgbEncoderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
