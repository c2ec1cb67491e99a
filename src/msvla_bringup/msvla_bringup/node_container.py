"""node_container: several nodes of a graph in one process, sharing one executor.

    node_container --node msvla_encoders/rgb_encoder --ros-args -r __node:=rgb_encoder --params-file a.yaml \
                   --node msvla_fusion/fusion_node --ros-args -r __node:=fusion_node --params-file b.yaml

The Python counterpart of an rclcpp component container. Each `--node <package>/<executable>`
section names a node executable of the graph and the `--ros-args` it would get as a process of its
own; the node is created from the class its executable runs, with those arguments as its own
(global arguments do not apply), so parameters, remappings and names are exactly as if it ran alone.
Graphs compose nodes that share a `process` name (config/graphs/*.yaml): on a 2-core machine one
process instead of seven avoids the serialisation, scheduling and per-process executor costs that
dominate the latency of the split vehicle graph (benchmarks/vehicle.py).
"""
from __future__ import annotations

import importlib
import inspect
import sys
from importlib.metadata import entry_points

from msvla_ros.main import run_nodes

NODE_FLAG = "--node"


class ContainerArgumentError(ValueError):
    """The container's command line does not name nodes it can start."""


def parse_sections(argv: list[str]) -> list[tuple[str, str, list[str]]]:
    """[(package, executable, the node's own arguments)] from `--node pkg/exe <args> ...`."""
    if not argv or argv[0] != NODE_FLAG:
        raise ContainerArgumentError(f"expected {NODE_FLAG} <package>/<executable> first, got {argv[:1]}")
    sections = []
    for arg in argv:
        if arg == NODE_FLAG:
            sections.append(None)
        elif sections[-1] is None:
            package, _, executable = arg.partition("/")
            if not package or not executable:
                raise ContainerArgumentError(f"{NODE_FLAG} {arg!r}: expected <package>/<executable>")
            sections[-1] = (package, executable, [])
        else:
            sections[-1][2].append(arg)
    if sections[-1] is None:
        raise ContainerArgumentError(f"{NODE_FLAG} at the end names no node")
    return sections


def node_class(package: str, executable: str) -> type:
    """The node class the executable runs: the rclpy Node subclass defined in the module of its
    console script."""
    from rclpy.node import Node

    scripts = [ep for ep in entry_points(group="console_scripts")
               if ep.name == executable and ep.module.split(".")[0] == package]
    if not scripts:
        raise ContainerArgumentError(f"package {package} has no executable {executable}")
    module = importlib.import_module(scripts[0].module)
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Node) and c.__module__ == module.__name__]
    if len(classes) != 1:
        raise ContainerArgumentError(f"{package}/{executable}: module {module.__name__} defines "
                                     f"{len(classes)} node classes, expected exactly one")
    return classes[0]


def main(args: list[str] | None = None) -> int:
    argv = sys.argv[1:] if args is None else args
    try:
        sections = parse_sections(argv)
        classes = [node_class(package, executable) for package, executable, _ in sections]
    except ContainerArgumentError as exc:
        print(f"[FATAL] node_container: {exc}", file=sys.stderr, flush=True)
        return 2
    factories = [lambda cls=cls, own=own: cls(cli_args=own, use_global_arguments=False)
                 for cls, (_, _, own) in zip(classes, sections)]
    labels = [f"{_node_name(own) or executable} ({package}/{executable})" for package, executable, own in sections]
    return run_nodes(factories, args=[], labels=labels)


def _node_name(ros_args: list[str]) -> str:
    """The name a `-r __node:=<name>` remapping gives the node, if any."""
    for arg in ros_args:
        if arg.startswith("__node:="):
            return arg.partition(":=")[2]
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
