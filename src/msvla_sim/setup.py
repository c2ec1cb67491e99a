import os

from setuptools import find_packages, setup

package_name = "msvla_sim"

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
    description="PyBullet simulations of the MSVLA robots (Franka Panda tabletop with an RGB-D camera).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "franka_sim = msvla_sim.franka_sim_node:main",
            "vehicle_sim = msvla_sim.vehicle_sim_node:main",
            "msvla-record-franka = msvla_sim.record_franka:main",
            "msvla-record-vehicle = msvla_sim.record_vehicle:main",
        ],
    },
)
