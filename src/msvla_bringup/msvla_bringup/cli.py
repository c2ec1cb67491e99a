"""msvla: one command for the MSVLA workspace.

    msvla doctor                      check this machine (ROS, DDS profile, checkpoints, language model)
    msvla demo [--robot vehicle]      simulated robot + node graph, a few episodes (make demo)
    msvla record [--vehicle] ...      record scripted-expert episodes as rosbags (make record)
    msvla train --config FILE ...     staged training from rosbags (make train)
    msvla eval [--vehicle] ...        offline and closed-loop evaluation (make eval)
    msvla launch [franka|vehicle] [name:=value ...]   ros2 launch msvla_bringup <file>

Every subcommand but doctor passes its remaining arguments to the command it wraps;
`msvla <subcommand> --help` shows both. Relative paths (config/..., bags/...) are relative to the
workspace root, as in the Makefile.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HELP_FLAGS = ("-h", "--help")
LAUNCH_ALIASES = {"franka": "franka_rgbd.launch.py", "vehicle": "vehicle_multisensor.launch.py"}
DEFAULT_LAUNCH = "franka_rgbd.launch.py"


@dataclass(frozen=True)
class Wrapped:
    module: str  # its main(argv) runs in this process
    make: str
    summary: str
    description: str


WRAPPED = {
    "record": Wrapped("msvla_sim.record_franka", "make record",
                      "record scripted-expert demonstrations as rosbag2 episodes",
                      "Record scripted-expert episodes in the PyBullet simulator, one rosbag2 bag per "
                      "episode. Runs `python -m msvla_sim.record_franka` (make record); with --vehicle, "
                      "`python -m msvla_sim.record_vehicle` (make record-vehicle). Without --output the "
                      "bags go to bags/franka (bags/vehicle)."),
    "record-vehicle": Wrapped("msvla_sim.record_vehicle", "make record-vehicle", "", ""),
    "train": Wrapped("msvla_training.train", "make train",
                     "train a VLA from recorded bags, stage by stage",
                     "Train a VLA from recorded rosbags in the stages its config lists. Runs "
                     "`python -m msvla_training.train` (make train). The vehicle: --config "
                     "config/training/vehicle_drive.yaml (make train-vehicle)."),
    "eval": Wrapped("msvla_training.evaluate", "make eval",
                    "evaluate a checkpoint offline and in closed loop",
                    "Evaluate the grasp checkpoint: offline metrics on the test split of bags/franka and "
                    "closed-loop grasp success of the node graph on held-out scenes. Runs "
                    "`python -m msvla_training.evaluate` (make eval); as make eval, it adds "
                    "--closed-loop-only when bags/franka does not exist and neither --config, --bags, "
                    "--offline-only nor --closed-loop-only is given. With --vehicle, "
                    "`python -m msvla_bringup.vehicle_eval` (make eval-vehicle)."),
    "eval-vehicle": Wrapped("msvla_bringup.vehicle_eval", "make eval-vehicle", "", ""),
    "demo": Wrapped("msvla_bringup.demo", "make demo",
                    "run the simulated robot and its graph for a few episodes",
                    "Start the simulator and the node graph as separate processes and run a few "
                    "episodes with a summary table. Runs `python -m msvla_bringup.demo` (make demo; "
                    "make demo ROBOT=vehicle is --robot vehicle)."),
}
# `--vehicle` selects the vehicle variant of these subcommands.
VEHICLE_VARIANT = {"record": "record-vehicle", "eval": "eval-vehicle"}
SUBCOMMANDS = ("doctor", "demo", "record", "train", "eval", "launch")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="msvla", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    subs = {}
    doctor = subparsers.add_parser(
        "doctor", help="check the environment: OK/WARN/FAIL per check, exit 1 on any FAIL",
        description="Check this machine: rclpy and the RMW, ROS_DISTRO, the Fast DDS profile, "
                    "HF_HUB_OFFLINE, the shipped checkpoints (model id recomputed from the weights), "
                    "the packaged language model, CPUs/torch/CUDA and the topics on the ROS graph "
                    "against the Franka graph. One line per check; exit code 1 if any check FAILs.")
    doctor.add_argument("--graph-seconds", type=float, default=2.0, metavar="S",
                        help="listen to the ROS graph for S seconds (default 2; 0: skip the graph check)")
    doctor.add_argument("--graph", default="franka_rgbd", choices=("franka_rgbd", "franka_rgb"),
                        help="graph whose topics are expected (default franka_rgbd)")
    doctor.add_argument("--checkpoint", action="append", type=Path, metavar="DIR",
                        help="check this checkpoint directory instead of the shipped ones (repeatable)")
    subs["doctor"] = doctor
    for name in ("demo", "record", "train", "eval"):
        w = WRAPPED[name]
        sub = subparsers.add_parser(name, help=f"{w.summary} ({w.make})", description=w.description,
                                    add_help=False)
        sub.add_argument("-h", "--help", action="store_true",
                         help="this help, then the options of the wrapped command")
        if name in VEHICLE_VARIANT:
            sub.add_argument("--vehicle", action="store_true", help=f"the vehicle variant ({name}-vehicle)")
        sub.add_argument("args", nargs="*", metavar="ARGS", help=f"passed to python -m {w.module} "
                                                                 f"(arguments after -- verbatim)")
        subs[name] = sub
    launch = subparsers.add_parser(
        "launch", add_help=False, help="start a robot graph with ros2 launch",
        description="Start a robot graph: `ros2 launch msvla_bringup FILE [name:=value ...]`. FILE is "
                    "franka (franka_rgbd.launch.py, the default), vehicle (vehicle_multisensor.launch.py), "
                    "another launch file of msvla_bringup or a path. Needs ros2 on PATH (source "
                    "/opt/ros/jazzy/setup.bash); machines with only the ROS wheels use `msvla demo`.")
    launch.add_argument("-h", "--help", action="store_true", help="this help and the launch file's arguments")
    launch.add_argument("file", nargs="?", metavar="FILE", help="launch file (default franka)")
    launch.add_argument("args", nargs="*", metavar="name:=value", help="launch arguments, e.g. simulation:=true")
    subs["launch"] = launch
    return parser, subs


def split_args(rest: list[str], own_flags: tuple[str, ...] = ()) -> tuple[set[str], bool, list[str]]:
    """(own flags given, help asked, arguments for the wrapped command). Done by hand because
    argparse reorders or swallows unknown options mixed with positionals."""
    own, wants_help, passed = set(), False, []
    for i, arg in enumerate(rest):
        if arg == "--":
            passed += rest[i + 1:]
            break
        if arg in own_flags:
            own.add(arg)
        elif arg in HELP_FLAGS:
            wants_help = True
        else:
            passed.append(arg)
    return own, wants_help, passed


def has_option(args: list[str], option: str) -> bool:
    return any(a == option or a.startswith(option + "=") for a in args)


def call_main(module: str, prog: str, argv: list[str]) -> int:
    """Run `module.main(argv)` here, with its usage and errors naming `prog`."""
    saved = sys.argv
    # argparse takes the program name from sys.argv[0] when the parser is built
    sys.argv = [prog, *argv]
    try:
        code = importlib.import_module(module).main(argv)
    except SystemExit as exc:
        code = exc.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    finally:
        sys.argv = saved
    return int(code or 0)


def _share(rel: str) -> Path | None:
    try:
        from msvla_ros.paths import resolve_path

        return resolve_path(f"package://msvla_bringup/{rel}")
    except (FileNotFoundError, ImportError):
        return None


def apply_make_environment(simulated_graph: bool) -> None:
    """What the Makefile exports, unless the caller set it already."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    profile = _share("config/fastdds.xml")
    if profile is not None and profile.is_file():
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(profile))
    if simulated_graph:
        # A real robot's graph may span hosts; a simulated one must not mix with a neighbour's.
        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def run_wrapped(name: str, rest: list[str], subs: dict[str, argparse.ArgumentParser]) -> int:
    own, wants_help, args = split_args(rest, ("--vehicle",) if name in VEHICLE_VARIANT else ())
    target = VEHICLE_VARIANT[name] if "--vehicle" in own else name
    wrapped = WRAPPED[target]
    prog = f"msvla {name}" + (" --vehicle" if "--vehicle" in own else "")
    if wants_help:
        print(subs[name].format_help())
        print(f"Options of `python -m {wrapped.module}` ({wrapped.make}), passed through:\n", flush=True)
        return call_main(wrapped.module, prog, ["--help"])
    if target in ("record", "record-vehicle") and not has_option(args, "--output"):
        args = ["--output", "bags/vehicle" if target == "record-vehicle" else "bags/franka", *args]
    if target == "eval" and not any(has_option(args, o) for o in
                                    ("--config", "--bags", "--offline-only", "--closed-loop-only")):
        if not Path("bags/franka").exists():
            print("msvla eval: no bags/franka here, closed-loop evaluation only (as make eval)", file=sys.stderr)
            args = [*args, "--closed-loop-only"]
    apply_make_environment(simulated_graph=target in ("demo", "eval", "eval-vehicle"))
    return call_main(wrapped.module, prog, args)


# ------------------------------------------------------------------------------------ launch

def launch_files() -> dict[str, Path]:
    folder = _share("launch")
    return {p.name: p for p in sorted(folder.glob("*.launch.py"))} if folder and folder.is_dir() else {}


def resolve_launch_file(name: str | None, available: dict[str, Path]) -> tuple[list[str], Path | None]:
    """(what follows `ros2 launch`: the package and file name, or a path; the file if found)."""
    name = LAUNCH_ALIASES.get(name or "franka", name)
    if "/" in name:
        path = Path(name)
        if not path.is_file():
            raise SystemExit(f"msvla launch: {name} does not exist")
        return [str(path.resolve())], path
    if not name.endswith(".launch.py"):
        name += ".launch.py"
    if available and name not in available:
        raise SystemExit(f"msvla launch: no launch file {name} in msvla_bringup; available: "
                         f"{', '.join(available)} (or franka, vehicle)")
    return ["msvla_bringup", name], available.get(name)


def split_launch_args(args: list[str]) -> tuple[str | None, list[str]]:
    """(launch file or None, launch arguments): the file is a first argument that is no
    option and no name:=value."""
    if args and not args[0].startswith("-") and ":=" not in args[0]:
        return args[0], args[1:]
    return None, args


def launch_command(args: list[str], available: dict[str, Path]) -> list[str]:
    file, rest = split_launch_args(args)
    target, _ = resolve_launch_file(file, available)
    return ["ros2", "launch", *target, *rest]


def _docstring(path: Path) -> str:
    try:
        return ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        return ""


def run_launch(rest: list[str], subs: dict[str, argparse.ArgumentParser]) -> int:
    _, wants_help, args = split_args(rest)
    available = launch_files()
    file, _ = split_launch_args(args)
    target, path = resolve_launch_file(file, available)
    command = launch_command(args, available)
    ros2 = shutil.which("ros2")
    if wants_help:
        print(subs["launch"].format_help())
        print("Launch files of msvla_bringup:")
        for name, launch_file in available.items():
            print(f"  {name:32s} {(_docstring(launch_file).splitlines() or [''])[0]}")
        print(f"\nWould run: {' '.join(command)}\n", flush=True)
        if ros2:
            return subprocess.call([ros2, "launch", *target, "--show-args"])
        if path is not None:
            print(f"{path.name}:\n{_docstring(path)}\n")
        print("(ros2 is not on PATH here, so `ros2 launch --show-args` cannot list the launch arguments.)")
        return 0
    if ros2 is None:
        print("msvla launch: ros2 not found on PATH; source /opt/ros/jazzy/setup.bash. Machines with only "
              "the ROS wheels run the graph with `msvla demo` (the process runner).", file=sys.stderr)
        return 127
    apply_make_environment(simulated_graph=False)
    print(" ".join(command), file=sys.stderr, flush=True)
    proc = subprocess.Popen([ros2, *command[1:]])
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reaches ros2 launch too (same process group); let it shut the graph down.
            continue


# ------------------------------------------------------------------------------------ main

def run_doctor(args) -> int:
    from . import doctor

    checks = doctor.run_checks(checkpoints=args.checkpoint, graph_seconds=args.graph_seconds, graph=args.graph)
    return doctor.report(checks, sys.stdout)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, subs = build_parser()
    try:
        if not argv:
            parser.print_help()
            return 2
        if argv[0] in WRAPPED and argv[0] in SUBCOMMANDS:
            return run_wrapped(argv[0], argv[1:], subs)
        if argv[0] == "launch":
            return run_launch(argv[1:], subs)
        args = parser.parse_args(argv)
        if args.graph_seconds < 0:
            parser.error("--graph-seconds must be >= 0")
        return run_doctor(args)
    except SystemExit as exc:  # --help, usage errors and our own messages end here, as an exit code
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        return int(exc.code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
