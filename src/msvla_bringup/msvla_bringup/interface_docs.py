"""Generate the package READMEs' interface sections and config/params/*.yaml from one schema.

    python -m msvla_bringup.interface_docs --write   # regenerate after changing a node
    python -m msvla_bringup.interface_docs --check   # exit 1 and name the stale files

The schema is msvla_bringup.interfaces (topics, services) plus each node class's
parameter_specs() (the list its constructor declares with descriptors and ranges).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from msvla_core.params import ParamSpec

from .interfaces import NODES, QOS, TRANSITIONS, Endpoint, NodeInterface

BEGIN = "<!-- BEGIN GENERATED INTERFACES: python -m msvla_bringup.interface_docs --write -->"
END = "<!-- END GENERATED INTERFACES -->"
_TYPE_NAMES = {bool: "bool", int: "int", float: "double", str: "string", list: "array"}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    return json.dumps(value)


def _range(spec: ParamSpec) -> str:
    if spec.choices:
        return ", ".join(spec.choices)
    if spec.min is None and spec.max is None:
        return ""
    low = "" if spec.min is None else f"{spec.min:g}"
    high = "" if spec.max is None else f"{spec.max:g}"
    return f"[{low}, {high}]"


def parameter_table(specs: list[ParamSpec]) -> str:
    rows = ["| parameter | type | default | range | unit | description |", "|---|---|---|---|---|---|"]
    for s in specs:
        rows.append(f"| `{s.name}` | {_TYPE_NAMES[s.type]} | `{_cell(_value(s.default))}` | {_cell(_range(s))} "
                    f"| {_cell(s.unit)} | {_cell(s.description)}{'' if s.read_only else ' (settable at run time)'} |")
    return "\n".join(rows)


def _topic_name(e: Endpoint) -> str:
    return f"`<{e.topic_param}>` (parameter)" if e.topic_param else f"`{e.topic}`"


def endpoint_table(endpoints: tuple[Endpoint, ...]) -> str:
    rows = ["| topic | type | QoS | description |", "|---|---|---|---|"]
    rows += [f"| {_topic_name(e)} | `{e.type}` | {e.qos} | {_cell(e.description)}"
             f"{f' Only when {e.condition()}.' if e.condition() else ''} |" for e in endpoints]
    return "\n".join(rows)


def node_section(node: NodeInterface) -> str:
    parts = [f"### `{node.executable}` (node name `{node.node_name}`)", "", node.summary, "",
             f"Run: `ros2 run {node.package} {node.executable} --ros-args --params-file "
             f"config/params/{node.executable}.yaml`", ""]
    if TRANSITIONS in node.publishes:
        parts += [f"A managed (lifecycle) node: `ros2 lifecycle set /{node.node_name} configure` loads what it "
                  f"needs (refused with the reason on a bad configuration), `activate` starts its output, "
                  f"`deactivate` stops it. With `autostart` (default true) it configures and activates "
                  f"itself.", ""]
    if node.subscribes:
        parts += ["Subscribes:", "", endpoint_table(node.subscribes), ""]
    if node.publishes:
        parts += ["Publishes:", "", endpoint_table(node.publishes), ""]
    if node.services:
        parts += ["Services:", "", "| service | type | description |", "|---|---|---|"]
        parts += [f"| `{s.name}` | `{s.type}` | {_cell(s.description)} |" for s in node.services]
        parts.append("")
    parts += ["Parameters:", "", parameter_table(node.parameter_specs()), ""]
    return "\n".join(parts)


def package_section(package: str) -> str:
    nodes = [n for n in NODES if n.package == package]
    used = sorted({e.qos for n in nodes for e in n.subscribes + n.publishes})
    qos = ["QoS names used above:", ""] + [f"- {name}: {QOS[name]}" for name in used]
    return "\n".join([BEGIN, "## Nodes", ""] + [node_section(n) for n in nodes] + qos + ["", END])


def parameter_file(node: NodeInterface) -> str:
    """A ROS 2 parameter file with every parameter at its default, each documented in a comment."""
    lines = [f"# Default parameters of {node.package}/{node.executable}, generated from the node's "
             f"declarations", "# (python -m msvla_bringup.interface_docs --write): edit the node, not this file.",
             f"{node.node_name}:", "  ros__parameters:"]
    for s in node.parameter_specs():
        notes = "; ".join(x for x in (s.unit, _range(s)) if x)
        lines.append(f"    # {s.description}" + (f" ({notes})" if notes else ""))
        # A parameter file types an empty list as a byte array, which a double-array declaration
        # refuses: an empty default is shown commented out (the node's default is the same).
        unset = "# " if s.type is list and not s.default else ""
        lines.append(f"    {unset}{s.name}: {_value(s.default)}")
    return "\n".join(lines) + "\n"


def expected_files(root: Path) -> dict[Path, str]:
    """Every generated file and its content; README files keep the text around the markers."""
    files = {root / "config" / "params" / f"{n.executable}.yaml": parameter_file(n) for n in NODES}
    for package in dict.fromkeys(n.package for n in NODES):
        path = root / "src" / package / "README.md"
        current = path.read_text() if path.exists() else f"# {package}\n\n{BEGIN}\n{END}\n"
        if BEGIN not in current or END not in current:
            raise ValueError(f"{path} lacks the generated-section markers {BEGIN!r} ... {END!r}")
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        files[path] = head + package_section(package) + tail
    return files


def stale_files(root: Path) -> list[Path]:
    return [path for path, text in expected_files(root).items()
            if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write the generated files")
    mode.add_argument("--check", action="store_true", help="exit 1 if any generated file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for path in stale:
            print(f"stale: {path} (run python -m msvla_bringup.interface_docs --write)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected_files(args.root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
