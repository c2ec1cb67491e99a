"""The one conversion from graph data to launch_ros actions (used only by launch/*.launch.py)."""
from __future__ import annotations

from .graph import GraphSpec


def node_actions(spec: GraphSpec, base, simulation: bool, overrides: dict[str, dict] | None = None) -> list:
    from launch_ros.actions import Node

    overrides = overrides or {}
    return [
        Node(package=n.package, executable=n.executable, name=n.name, output="screen",
             parameters=[str(base / rel) for rel in n.parameters] + ([overrides[n.name]] if n.name in overrides else []),
             remappings=list(n.remappings.items()))
        for n in spec.selected(simulation)
    ]
