"""The one conversion from graph data to launch_ros actions (used only by launch/*.launch.py).

Everything before it - which graph, whether the simulator runs, whether the shield may command
the robot - is decided by `launch_choices`, which needs no launch machinery and is tested alone.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from .graph import (GraphSpec, actuation_overrides, container_arguments, merge_overrides, process_groups,
                    write_overrides)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class LaunchChoices:
    graph: str
    simulation: bool
    actuation: bool


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"launch argument {name}:={text!r} must be true or false")


def launch_choices(graphs: dict[str, str], variant: str, simulation: str, actuation_enabled: str) -> LaunchChoices:
    """Launch argument texts -> what to start. `actuation_enabled:=auto` follows `simulation`: the
    simulator is commanded, a robot gets a dry run until actuation is enabled explicitly."""
    if variant not in graphs:
        raise ValueError(f"launch argument variant:={variant!r} must be one of {sorted(graphs)}")
    sim = _flag("simulation", simulation)
    actuation = sim if actuation_enabled.strip().lower() == "auto" else _flag("actuation_enabled", actuation_enabled)
    return LaunchChoices(graphs[variant], sim, actuation)


def node_actions(spec: GraphSpec, base, simulation: bool, overrides: dict[str, dict] | None = None,
                 actuation: bool | None = None) -> list:
    """`actuation` (default: as `simulation`) enables the actuator nodes' commands."""
    from launch_ros.actions import Node

    enabled = simulation if actuation is None else actuation
    overrides = merge_overrides(actuation_overrides(spec, enabled), overrides or {})
    actions = []
    for group in process_groups(spec.selected(simulation)):
        if len(group) > 1:  # composed: one node_container process with each node's own arguments
            with_overrides = [n for n in group if n.name in overrides]
            directory = Path(tempfile.mkdtemp(prefix="msvla-launch-")) if with_overrides else None
            files = {n.name: write_overrides(n, overrides[n.name], directory) for n in with_overrides}
            actions.append(Node(package="msvla_bringup", executable="node_container", output="screen",
                                arguments=container_arguments(group, base, files)))
            continue
        n = group[0]
        actions.append(Node(package=n.package, executable=n.executable, name=n.name, output="screen",
                            parameters=[str(base / rel) for rel in n.parameters]
                            + ([overrides[n.name]] if n.name in overrides else []),
                            remappings=list(n.remappings.items())))
    return actions


def graph_launch_description(graphs: dict[str, str], default_variant: str, variant_help: str,
                             simulator_help: str):
    """The LaunchDescription of a launch file: arguments simulation, variant, actuation_enabled."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    from .graph import load_graph

    def nodes(context):
        args = {name: LaunchConfiguration(name).perform(context)
                for name in ("variant", "simulation", "actuation_enabled")}
        choices = launch_choices(graphs, **args)
        spec, base = load_graph(choices.graph)
        return node_actions(spec, base, choices.simulation, actuation=choices.actuation)

    return LaunchDescription([
        DeclareLaunchArgument("simulation", default_value="false", description=simulator_help),
        DeclareLaunchArgument("variant", default_value=default_variant, choices=sorted(graphs),
                              description=variant_help),
        DeclareLaunchArgument("actuation_enabled", default_value="auto", choices=["auto", "true", "false"],
                              description="Let the safety shield publish commands to the robot. auto: only "
                                          "in simulation; on a robot the shield runs dry (checks and "
                                          "reports, commands nothing) until this is true or "
                                          "/msvla/safety/enable_actuation is called."),
        OpaqueFunction(function=nodes),
    ])
