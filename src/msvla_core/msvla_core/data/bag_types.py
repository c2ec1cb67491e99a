"""rosbags type store with the ROS 2 Jazzy message set plus the MSVLA interfaces.

The interfaces are registered from their .msg definitions (the repository's msg/ folder, or the
installed share/msvla_msgs/msg), so bags written here carry the same type names and hashes as
messages published by the nodes.
"""
from __future__ import annotations

from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

PACKAGE = "msvla_msgs"


def default_msg_dir() -> Path:
    """The repository's msg/ folder (this file lives in src/msvla_core/msvla_core/data/)."""
    return Path(__file__).resolve().parents[4] / "msg"


def msvla_typestore(msg_dir: str | Path | None = None):
    """A Jazzy type store with every msvla_msgs/msg/*.msg of `msg_dir` registered."""
    msg_dir = Path(msg_dir) if msg_dir else default_msg_dir()
    files = sorted(msg_dir.glob("*.msg"))
    if not files:
        raise FileNotFoundError(f"no .msg files in {msg_dir}: cannot register the {PACKAGE} interfaces")
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for path in files:
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store
