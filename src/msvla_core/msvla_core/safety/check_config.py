"""Validate safety-shield parameter files without ROS: python -m msvla_core.safety.check_config FILE...

Files are merged in order, as when a node is given several. Exit status 0 and the limits when valid,
1 and the reason (naming the file and the limit) when not.
"""
from __future__ import annotations

import argparse
import sys

from .params import check_params_files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="config/safety/*.yaml, later ones override earlier ones")
    parser.add_argument("--node-name", default="safety_shield")
    args = parser.parse_args(argv)
    try:
        mode, limits, watchdog = check_params_files(args.files, args.node_name)
    except (ValueError, OSError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(f"valid {mode} shield limits: {limits}\nwatchdog: {watchdog}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
