import os

from setuptools import find_packages, setup

package_name = "msvla_bringup"

def tree(folder):
    """data_files entries installing a linked top-level folder under share/<package>/<folder>."""
    entries = []
    for root, _, files in os.walk(folder):
        if files:
            entries.append((os.path.join("share", package_name, root), [os.path.join(root, f) for f in files]))
    return entries


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ] + tree("config") + tree("launch") + tree("models"),
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="MSVLA maintainers",
    maintainer_email="maintainers@msvla.dev",
    description="Robot graphs as data, launch files, parameter files, checkpoints, the process runner and the demo.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "msvla = msvla_bringup.cli:main",
            "grasp_markers = msvla_bringup.grasp_markers_node:main",
            "node_container = msvla_bringup.node_container:main",
        ],
    },
)
