import os

from setuptools import find_packages, setup

package_name = "msvla_safety"

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
    description="Safety-shield nodes (grasp and vehicle): the only publishers of robot commands.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "grasp_shield = msvla_safety.grasp_shield_node:main",
            "vehicle_shield = msvla_safety.vehicle_shield_node:main",
        ],
    },
)
