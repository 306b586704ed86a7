"""The wheel list of scripts/gpu-wheels.sh against the code: a distribution the GPU node lacks and the worker needs
must be carried (else the GPU check fails at its first import, after the machine's minutes started), and nothing
else is (the carry is limited to 64 MiB)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
CODE = [REPO / "worker", REPO / "bench", REPO / "models", REPO / "pipelines", REPO / "clients/python/npc_video_client"]
FIRST_PARTY = {"worker", "models", "pipelines", "npc_video_client", "bench", "tests"}
LOCAL_DISTRIBUTIONS = {"npc-video-client", "npc-video-worker"}  # travel as source on PYTHONPATH
# wheels.txt `left-out` boto3: only these files import it (and botocore), and every other module imports them lazily,
# for s3:// URLs alone; the check never configures one (tests/worker/test_without_boto3.py runs a job without boto3).
S3_FILES = {REPO / "worker" / "storage" / "s3.py", REPO / "worker" / "fetch" / "s3.py"}
S3_MODULES = {"worker.storage.s3", "worker.fetch.s3"}
S3_IMPORTS = {"boto3", "botocore", "s3transfer", "jmespath"}
# Requirement markers as the node evaluates them: CPython 3.12 on Linux x86_64.
NODE_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / "gpu" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


wheel_list = _load("wheel_list")
canonical = wheel_list.canonical


def node_packages() -> dict[str, str | None]:
    """scripts/gpu/node-packages.txt: name -> version where known."""
    packages: dict[str, str | None] = {}
    for raw in (SCRIPTS / "gpu" / "node-packages.txt").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            packages[canonical(name)] = version or None
    return packages


def listed() -> list[tuple[str, str, str]]:
    """What `scripts/gpu-wheels.sh --list` prints: (kind, name, version or note)."""
    done = subprocess.run(
        ["bash", str(SCRIPTS / "gpu-wheels.sh"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin", "VENV_PYTHON": sys.executable},
    )
    entries = []
    for line in done.stdout.splitlines():
        kind, spec, *note = line.split(" ")
        if kind in ("unavailable", "left-out"):
            entries.append((kind, spec, " ".join(note)))
        else:
            name, _, version = spec.partition("==")
            entries.append((kind, name, version))
    return entries


def imports_of(tree: ast.AST) -> list[tuple[str, bool]]:
    """(module, inside a function) for every absolute import of a parsed file, except under `if TYPE_CHECKING:`."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module, in_function))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))

    visit(tree, False)
    return found


def code_files() -> list[Path]:
    return [path for root in CODE for path in root.rglob("*.py")]


def imported_modules() -> set[str]:
    """Top-level modules the code imports anywhere (module level or inside functions), except under
    `if TYPE_CHECKING:`, in the S3 files (wheels.txt leaves boto3 out), the standard library and the project's own
    packages."""
    modules = {
        module.split(".")[0]
        for path in code_files()
        if path not in S3_FILES
        for module, _ in imports_of(ast.parse(path.read_text(encoding="utf-8")))
    }
    return {module for module in modules if module not in FIRST_PARTY and module not in sys.stdlib_module_names}


def gpu_extra_modules() -> set[str]:
    """Modules of pyproject's `gpu` extra: imported only by the speed settings that use them, so not installed in
    .venv; the node gets them as speed packages (wheels.txt `speed`)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = pyproject["project"]["optional-dependencies"]["gpu"]
    return {canonical(Requirement(text).name).replace("-", "_") for text in extra}


def project_requirements() -> list[Requirement]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(text) for text in pyproject["project"]["dependencies"]]


def requirements_of(name: str) -> list[Requirement]:
    """A distribution's Requires-Dist that apply on the node (no extras), read from .venv's metadata."""
    found = [Requirement(text) for text in metadata.requires(name) or []]
    return [req for req in found if req.marker is None or req.marker.evaluate(NODE_MARKERS)]


def needed_on_node() -> dict[str, str]:
    """Every distribution the worker needs that the node lacks -> why (the one that pulls it in)."""
    node = node_packages()
    by_module = metadata.packages_distributions()
    roots: dict[str, str] = {}
    for module in sorted(imported_modules() - gpu_extra_modules()):
        assert module in by_module, f"the code imports {module!r}, which no distribution in .venv provides"
        for dist in by_module[module]:
            roots.setdefault(canonical(dist), f"import {module}")
    left_out = {name for kind, name, _ in listed() if kind == "left-out"}
    for requirement in project_requirements():
        if canonical(requirement.name) not in left_out:
            roots.setdefault(canonical(requirement.name), "pyproject.toml")
    needed: dict[str, str] = {}
    pending = list(roots.items())
    while pending:
        name, why = pending.pop()
        if name in needed or name in node or name in LOCAL_DISTRIBUTIONS:
            continue  # the node's own packages come with what they need
        needed[name] = why
        pending += [(canonical(req.name), f"{name} requires it") for req in requirements_of(name)]
    return needed


def test_the_list_carries_exactly_what_the_node_lacks() -> None:
    carried = {name for kind, name, _ in listed() if kind == "need"}
    needed = needed_on_node()
    missing = {name: why for name, why in needed.items() if name not in carried}
    extra = carried - set(needed)
    assert not missing, f"add to scripts/gpu/wheels.txt (need NAME): {missing}"
    assert not extra, f"carried but not needed on the node (remove from scripts/gpu/wheels.txt): {sorted(extra)}"
    assert {"diffusers", "pydantic-core", "imageio-ffmpeg", "ftfy", "tomli-w"} <= carried
    assert not carried & {"boto3", "botocore", "s3transfer", "jmespath"}


def test_boto3_is_left_out_because_only_the_s3_files_import_it_and_only_lazily() -> None:
    assert {name for kind, name, _ in listed() if kind == "left-out"} == {"boto3"}
    for path in code_files():
        for module, in_function in imports_of(ast.parse(path.read_text(encoding="utf-8"))):
            where = path.relative_to(REPO)
            if module.split(".")[0] in S3_IMPORTS:
                assert path in S3_FILES, f"{where} imports {module}: only the S3 files may (boto3 is not carried)"
            if module in S3_MODULES and path not in S3_FILES:
                assert in_function, f"{where} imports {module} at module level: import it where s3:// is handled"


def test_versions_are_the_venvs_unless_pinned_with_a_reason() -> None:
    text = (SCRIPTS / "gpu" / "wheels.txt").read_text(encoding="utf-8")
    pinned = {entry.name for entry in wheel_list.parse(text) if entry.kind == "need" and entry.version}
    assert pinned == {"imageio-ffmpeg"}, "a pin other than .venv's needs a reason in wheels.txt and here"
    for kind, name, version in listed():
        if kind in ("need", "fallback") and name not in pinned:
            assert version == metadata.version(name), name
        if kind == "speed":
            assert version, f"speed package {name} must be pinned"


def test_fallbacks_are_node_packages_a_carried_wheel_constrains() -> None:
    entries = listed()
    carried = [name for kind, name, _ in entries if kind == "need"]
    node = node_packages()
    for kind, name, version in entries:
        if kind != "fallback":
            continue
        assert name in node, f"fallback {name} is not on the node: make it a need entry"
        constraints = [req for dist in carried for req in requirements_of(dist) if canonical(req.name) == name]
        assert any(str(req.specifier) for req in constraints), f"no carried wheel constrains {name}'s version"
        assert all(req.specifier.contains(version) for req in constraints), f"fallback {name}=={version} too old"


def test_node_versions_we_know_satisfy_the_carried_wheels_and_the_project() -> None:
    node = node_packages()
    carried = [name for kind, name, _ in listed() if kind == "need"]
    checks = [(req, "pyproject.toml") for req in project_requirements()]
    checks += [(req, dist) for dist in carried for req in requirements_of(dist)]
    for requirement, needed_by in checks:
        known = node.get(canonical(requirement.name))
        if known:
            assert requirement.specifier.contains(Version(known), prereleases=True), (
                f"{needed_by} requires {requirement}, the node has {known}"
            )


def test_the_gpu_tests_need_nothing_carried() -> None:
    node = node_packages()
    assert {"pytest", "pytest-timeout", "hypothesis", "packaging"} <= set(node)  # pyproject's timeout, probe


def test_speed_packages_are_carried_or_explained() -> None:
    kinds = {name: kind for kind, name, _ in listed()}
    assert kinds.get("torchao") == "speed"
    assert {kinds.get(module.replace("_", "-")) for module in gpu_extra_modules()} == {"speed"}
    assert kinds.get("sageattention") == "unavailable"
    notes = {name: note for kind, name, note in listed() if kind == "unavailable"}
    assert "2.1.1" in notes["sageattention"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("need diffusers\nneed diffusers\n", "listed again"),
        ("wanted diffusers\n", "unknown kind"),
        ("need diffusers==1.0\n", "say why"),
        ("speed torchao\n", "pinned version"),
        ("fallback typing-extensions==4.16.0\n", "bare name"),
        ("unavailable sageattention\n", "note saying why"),
        ("need diffusers extra words\n", "a comment starts with #"),
        ("need diff users\n", "a comment starts with #"),
    ],
)
def test_malformed_lists_are_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(wheel_list.WheelListError, match=message) as caught:
        wheel_list.parse(text, "wheels.txt")
    assert "wheels.txt line" in str(caught.value)
