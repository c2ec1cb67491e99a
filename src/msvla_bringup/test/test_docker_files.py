"""docker/ names only what the repository has: checked by reading the files, without Docker.

The image mirrors the repository under its WORKDIR through COPY instructions; compose mounts
host folders over parts of it. Every path a command, an ENV value or a mount uses is mapped back
to the repository through those two and must exist there.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
ENTRYPOINT = DOCKER / "entrypoint.sh"
# Filled on the host (recorded episodes, training output) and gitignored, so absent from a clone.
DATA_DIRS = {"bags", "runs"}
# Modules run with `python3 -m` that come from the image, not from src/.
TOOL_MODULES = {"colcon"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue  # inside a continued instruction Docker drops these lines too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


INSTRUCTIONS = dockerfile_instructions()


def arguments(rest: str) -> list[str]:
    return json.loads(rest) if rest.startswith("[") else shlex.split(rest)


def workdir() -> PurePosixPath:
    path = PurePosixPath("/")
    for keyword, rest in INSTRUCTIONS:
        if keyword == "WORKDIR":
            path = path / rest
    return path


WORKDIR = workdir()


def copies() -> list[tuple[str, PurePosixPath]]:
    """(source relative to the build context, where it lands in the image) for every COPY/ADD."""
    result, current = [], PurePosixPath("/")
    for keyword, rest in INSTRUCTIONS:
        if keyword == "WORKDIR":
            current = current / rest
        if keyword not in ("COPY", "ADD"):
            continue
        args = arguments(rest)
        assert not any(a.startswith("--from") for a in args), "no multi-stage copies expected"
        *sources, dest = [a for a in args if not a.startswith("--")]
        into_folder = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
        for source in sources:
            source = source.rstrip("/")
            is_folder = (ROOT / source).is_dir()
            target = current / dest if (is_folder or not into_folder) else current / dest / PurePosixPath(source).name
            result.append((source, target))
    return result


COPIES = copies()


def package_dirs() -> dict[str, Path]:
    """ROS package name -> its source folder, from the package.xml files under src/."""
    found = {}
    for manifest in sorted((ROOT / "src").glob("*/package.xml")):
        name = re.search(r"<name>\s*([^<\s]+)\s*</name>", manifest.read_text())
        assert name, f"{manifest} has no <name>"
        found[name.group(1)] = manifest.parent
    return found


PACKAGES = package_dirs()


def under(path: PurePosixPath, prefix: PurePosixPath) -> PurePosixPath | None:
    try:
        return path.relative_to(prefix)
    except ValueError:
        return None


def longest_prefix(path: PurePosixPath, table: dict[PurePosixPath, Path]) -> Path | None:
    matches = [(prefix, repo) for prefix, repo in table.items() if under(path, prefix) is not None]
    if not matches:
        return None
    prefix, repo = max(matches, key=lambda match: len(match[0].parts))
    return repo / under(path, prefix)


def image_to_repo(path: PurePosixPath, mounts: dict[PurePosixPath, Path] | None = None) -> Path | None:
    """The repository path an image path comes from: a mount, else a package's installed share
    (installed from its source folder by its setup.py), else a COPY. None when nothing provides it."""
    mounted = longest_prefix(path, mounts or {})
    if mounted is not None:
        return mounted
    share = re.match(rf"^{re.escape(str(WORKDIR))}/install/([^/]+)/share/\1/([^/]+)(/.*)?$", str(path))
    if share and share.group(1) in PACKAGES:
        package, folder, rest = share.group(1), share.group(2), (share.group(3) or "").lstrip("/")
        source_dir = PACKAGES[package]
        assert re.search(rf"[\"']{re.escape(folder)}[\"']", (source_dir / "setup.py").read_text()), \
            f"{path}: the setup.py of {package} does not install {folder}"
        return image_to_repo(WORKDIR / source_dir.relative_to(ROOT).as_posix() / folder / rest)
    return longest_prefix(path, {target: ROOT / source for source, target in COPIES})


def module_file(module: str, package_file: str = "__init__.py") -> Path | None:
    """The source file of a workspace module (`package_file` for a package), or None."""
    relative = Path(*module.split("."))
    for folder in PACKAGES.values():
        for candidate in (folder / relative.with_suffix(".py"), folder / relative / package_file):
            if candidate.is_file():
                return candidate
    return None


def declared_launch_arguments(launch_file: Path) -> set[str]:
    """Arguments declared by a launch file or by the workspace modules it imports them from."""
    texts = [launch_file.read_text()]
    for module in re.findall(r"^from\s+([\w.]+)\s+import", texts[0], re.M):
        source = module_file(module)
        if source is not None:
            texts.append(source.read_text())
    return {name for text in texts for name in re.findall(r"DeclareLaunchArgument\(\s*[\"'](\w+)[\"']", text)}


def dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, rest in INSTRUCTIONS:
        if keyword == "ENV":
            tokens = shlex.split(rest)
            if "=" not in tokens[0]:
                env[tokens[0]] = " ".join(tokens[1:])
            else:
                env.update(token.split("=", 1) for token in tokens)
    return env


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def commands(command) -> list[list[str]]:
    """The simple commands a compose `command` runs, with `bash -c` scripts split into theirs."""
    tokens = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    if len(tokens) >= 3 and tokens[0] in ("bash", "sh") and tokens[1] == "-c":
        return [shlex.split(part) for part in re.split(r";|&&|\|\||\n", tokens[2]) if part.strip()]
    return [tokens]


def service_mounts(service: dict) -> dict[PurePosixPath, Path]:
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        assert source.startswith("."), f"{volume}: only bind mounts from the repository are expected"
        mounts[PurePosixPath(target)] = Path(os.path.normpath(COMPOSE.parent / source))
    return mounts


def gitignored_top_level() -> set[str]:
    lines = (ROOT / ".gitignore").read_text().splitlines()
    return {line.strip().strip("/") for line in lines if line.strip() and not line.startswith("#")}


def test_dockerfile_is_based_on_ros_jazzy_ros_base():
    assert [rest for keyword, rest in INSTRUCTIONS if keyword == "FROM"] == ["ros:jazzy-ros-base"]


def test_every_copied_path_exists_and_is_not_excluded_from_the_build_context():
    patterns = [line.strip() for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert DATA_DIRS <= set(patterns), "recorded bags and runs must stay out of the build context"
    assert COPIES
    for source, _ in COPIES:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        parts = PurePosixPath(source).parts
        for depth in range(1, len(parts) + 1):
            for pattern in patterns:
                excluded = fnmatch("/".join(parts[:depth]), pattern) or (
                    pattern.startswith("**/") and fnmatch(parts[depth - 1], pattern[3:]))
                assert not excluded, f"COPY {source}: excluded by {pattern!r} in Dockerfile.dockerignore"


def test_links_under_src_point_at_folders_the_image_also_has():
    links = []
    for folder, dirs, files in os.walk(ROOT / "src"):
        links += [Path(folder) / name for name in dirs + files if (Path(folder) / name).is_symlink()]
    for link in links:
        relative = link.relative_to(ROOT)
        owners = [(source, target) for source, target in COPIES if under(PurePosixPath(relative), PurePosixPath(source)) is not None]
        assert owners, f"{relative} is not copied into the image"
        source, target = owners[0]
        in_image = target / under(PurePosixPath(relative), PurePosixPath(source))
        resolved = PurePosixPath(os.path.normpath(in_image.parent / os.readlink(link)))
        provided = image_to_repo(resolved)
        assert provided is not None and provided.resolve() == link.resolve(), \
            f"{relative} -> {os.readlink(link)} resolves to {resolved} in the image, which no COPY provides"


def test_requirements_are_the_pinned_non_ros_ones():
    runs = " ".join(rest for keyword, rest in INSTRUCTIONS if keyword == "RUN")
    named = set(re.findall(r"requirements/[\w.-]+\.txt", runs))
    assert {"requirements/python.txt", "requirements/constraints.txt"} <= named
    assert "requirements/ros-jazzy.txt" not in named, "ROS comes from apt in the image, not from PyPI wheels"
    for path in named:
        assert (ROOT / path).is_file(), path
    assert "rosdep install --from-paths src --ignore-src" in runs
    assert re.search(r"colcon build\b", runs)


def test_environment_is_offline_and_uses_the_fast_dds_profile():
    env = dockerfile_env()
    assert env.get("HF_HUB_OFFLINE") == "1" and env.get("TRANSFORMERS_OFFLINE") == "1"
    profiles = [env["FASTDDS_DEFAULT_PROFILES_FILE"]] + [
        service["environment"]["FASTDDS_DEFAULT_PROFILES_FILE"] for service in compose()["services"].values()
        if "FASTDDS_DEFAULT_PROFILES_FILE" in (service.get("environment") or {})]
    for profile in profiles:
        provided = image_to_repo(PurePosixPath(profile))
        assert provided is not None and provided.resolve() == (ROOT / "config" / "fastdds.xml").resolve(), profile


def test_entrypoint_is_an_executable_script_that_sources_ros_and_the_workspace():
    relative = ENTRYPOINT.relative_to(ROOT).as_posix()
    # Inside the image (colcon test there) there is no .git: the copied file keeps the checkout's mode.
    staged = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-s", "--", relative], capture_output=True,
                            text=True, check=True).stdout.split() if (ROOT / ".git").exists() else []
    if staged:
        assert staged[0] == "100755", f"{relative} is committed without its executable bit"
    else:
        assert os.access(ENTRYPOINT, os.X_OK), f"{relative} is not executable"
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!")
    assert "source /opt/ros/jazzy/setup.bash" in text
    assert f"source {WORKDIR}/install/setup.bash" in text
    assert text.rstrip().splitlines()[-1].strip() == 'exec "$@"'
    (entrypoint,) = [arguments(rest) for keyword, rest in INSTRUCTIONS if keyword == "ENTRYPOINT"]
    assert (relative, PurePosixPath(entrypoint[0])) in COPIES, "ENTRYPOINT is not the copied docker/entrypoint.sh"


def test_compose_services_build_this_dockerfile_and_share_ros_transport():
    services = compose()["services"]
    assert {"robot", "sim", "test", "train"} <= set(services)
    for name, service in services.items():
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context must be the repository root"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
    for name in ("robot", "sim"):
        assert services[name]["network_mode"] == "host" and services[name]["ipc"] == "host", name
    devices = services["train"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_compose_mounts_are_repository_folders_at_their_image_places():
    ignored = gitignored_top_level()
    for name, service in compose()["services"].items():
        for target, host in service_mounts(service).items():
            relative = host.relative_to(ROOT)  # raises for a folder outside the repository
            if relative.parts[0] in DATA_DIRS:
                assert relative.parts[0] in ignored, f"{name}: {relative} is data but not gitignored"
                assert target == WORKDIR / relative.as_posix(), f"{name}: {relative} mounted at {target}"
            else:
                assert host.exists(), f"{name}: mounts {relative}, which does not exist"
                shadowed = image_to_repo(target)
                assert shadowed is not None and shadowed.resolve() == host.resolve(), \
                    f"{name}: {relative} mounted at {target}, where the image has {shadowed}"


def test_compose_commands_name_existing_packages_launch_files_modules_and_configs():
    checked = 0
    for name, service in compose()["services"].items():
        working_dir = PurePosixPath(service.get("working_dir", str(WORKDIR)))
        mounts = service_mounts(service)
        for tokens in commands(service["command"]):
            if tokens[:2] == ["ros2", "launch"]:
                package, launch_file, *launch_args = tokens[2:]
                assert package in PACKAGES, f"{name}: no package.xml names {package}"
                path = image_to_repo(WORKDIR / "install" / package / "share" / package / "launch" / launch_file)
                assert path is not None and path.is_file(), f"{name}: {package} has no launch file {launch_file}"
                declared = declared_launch_arguments(path)
                for arg in launch_args:
                    assert arg.split(":=")[0] in declared, f"{name}: {launch_file} declares no argument {arg}"
                checked += 1
            for flag, value in zip(tokens, tokens[1:]):
                if flag == "-m":
                    top = value.split(".")[0]
                    if top in TOOL_MODULES:
                        continue
                    assert module_file(value, "__main__.py"), f"{name}: module {value} is not under src/"
                    checked += 1
            for token in tokens:
                if token.startswith("config/"):
                    path = image_to_repo(working_dir / token, mounts)
                    assert path is not None and path.is_file(), f"{name}: {token} does not exist"
                    checked += 1
    assert checked >= 4


def test_training_reads_and_writes_the_mounted_host_folders():
    service = compose()["services"]["train"]
    (tokens,) = commands(service["command"])
    config_path = tokens[tokens.index("--config") + 1]
    working_dir = PurePosixPath(service.get("working_dir", str(WORKDIR)))
    config = yaml.safe_load((ROOT / config_path).read_text())
    mounts = service_mounts(service)
    for key in ("bags", "output"):
        in_image = working_dir / config[key]
        assert any(under(in_image, target) is not None for target in mounts), \
            f"train: {key} ({in_image}) is not on a mounted host folder"
    for key in ("bag_spec", "calibration"):
        path = image_to_repo(working_dir / config[key], mounts)
        assert path is not None and path.is_file(), f"train: {key} {config[key]} is not in the image"
