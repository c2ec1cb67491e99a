"""Point the CMake config files shipped in the ROS 2 wheels at this interpreter.

The wheels were built on a manylinux image; their exported CMake files name that image's Python
include directory and numpy include directory. Building any interface package fails until those
paths point at the local interpreter's. The rewrite is idempotent.
"""
import pathlib
import re
import sys
import sysconfig

import numpy


def main() -> int:
    prefix = pathlib.Path(sys.prefix)
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    patterns = [
        (re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+"), python_include),
        (re.compile(r"/[^\s\";]*/site-packages/numpy/(?:_core|core)/include"), numpy_include),
    ]
    changed = 0
    for path in (prefix / "share").glob("*/cmake/*.cmake"):
        text = path.read_text(errors="surrogateescape")
        new = text
        for pattern, replacement in patterns:
            new = pattern.sub(lambda _m, r=replacement: r, new)
        if new != text:
            path.write_text(new, errors="surrogateescape")
            changed += 1
    print(f"fix_ros_cmake_paths: rewrote {changed} CMake files under {prefix / 'share'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
