from setuptools import find_packages, setup

package_name = "msvla_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="MSVLA maintainers",
    maintainer_email="maintainers@msvla.dev",
    description="ROS-edge helpers shared by the MSVLA nodes.",
    license="Apache-2.0",
)
