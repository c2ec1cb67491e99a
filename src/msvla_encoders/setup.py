import os

from setuptools import find_packages, setup

package_name = "msvla_encoders"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="MSVLA maintainers",
    maintainer_email="maintainers@msvla.dev",
    description="Per-sensor encoder nodes: each turns one sensor stream into SensorFeature messages.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "rgb_encoder = msvla_encoders.rgb_encoder_node:main",
            "depth_encoder = msvla_encoders.depth_encoder_node:main",
            "lidar_encoder = msvla_encoders.lidar_encoder_node:main",
            "radar_encoder = msvla_encoders.radar_encoder_node:main",
            "imu_encoder = msvla_encoders.imu_encoder_node:main",
            "tactile_encoder = msvla_encoders.tactile_encoder_node:main",
            "proprio_encoder = msvla_encoders.proprio_encoder_node:main",
        ],
    },
)
