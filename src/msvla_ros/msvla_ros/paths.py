"""Resolve package:// URIs in parameters, so parameter files work from any install location."""
from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory


def resolve_path(value: str) -> Path:
    """'package://<pkg>/<rel>' -> <share of pkg>/<rel>; any other string is a filesystem path."""
    if value.startswith("package://"):
        package, _, rel = value[len("package://"):].partition("/")
        try:
            return Path(get_package_share_directory(package)) / rel
        except PackageNotFoundError as exc:
            raise FileNotFoundError(f"{value}: package {package!r} is not installed") from exc
    return Path(value).expanduser()
