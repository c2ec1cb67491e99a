from setuptools import find_packages, setup

package_name = "msvla_training"

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
    description="Offline trainers for the MSVLA models (supervised bootstrap of the RGB-D grasp VLA from the simulator).",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "msvla-bootstrap-grasp = msvla_training.bootstrap_grasp:main",
            "msvla-train = msvla_training.train:main",
            "msvla-eval = msvla_training.evaluate:main",
        ],
    },
)
