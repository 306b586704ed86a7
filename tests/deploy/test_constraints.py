"""deploy/constraints.txt is the lock: scripts/setup.sh (developers, CI) and both images install every distribution
at the version it pins. Checked here: it pins the whole dependency closure (runtime and dev extras, transitively)
and nothing else, each pin inside the project's ranges, torch left to the machine; the environment the suite runs
in is the lock (NPC_WORKER_LOCK names another one, as deploy/update-constraints.sh does for its candidate); the
GPU image's pins (deploy/constraints-gpu-image.txt, tested on CPU by scripts/test-image-versions.sh) agree with the
node's package list, and pyproject.toml's floors for them are the oldest versions tested."""

from __future__ import annotations

import importlib.metadata
import os
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.deploy.artifacts import DEPLOY, ROOT

CONSTRAINTS = DEPLOY / "constraints.txt"
IMAGE_PINS = DEPLOY / "constraints-gpu-image.txt"
NODE_PACKAGES = ROOT / "scripts" / "gpu" / "node-packages.txt"
LEFT_TO_THE_MACHINE = re.compile(r"^(torch|triton|nvidia-[a-z0-9-]+|cuda-[a-z0-9-]+)$")  # torch and its build
# Installed from this repository's source, never from an index.
OWN_DISTRIBUTIONS = {"npc-video-client", "npc-video-worker"}
# Pinned on the node but tested here at another version, with the reason (deploy/constraints-gpu-image.txt says it
# too). torch is not in the lock at all (the CPU build of scripts/setup.sh stands in for the node's 2.11).
NOT_AS_ON_THE_NODE = {"numpy": "2.5 needs Python 3.12; the CPU torch here is cp311, so the oldest numpy allowed"}


def pins(path: Path) -> dict[NormalizedName, Version]:
    pinned: dict[NormalizedName, Version] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match is not None, f"{path.name}: {raw!r} is not a `name==version` pin"
        name = canonicalize_name(match.group(1))
        assert name not in pinned, f"{path.name}: {name} pinned twice"
        pinned[name] = Version(match.group(2))
    return pinned


def lock_in_use() -> Path | None:
    """The lock this environment was built from: deploy/constraints.txt unless NPC_WORKER_LOCK names another (the
    candidate of deploy/update-constraints.sh); None when built from the newest versions (NPC_WORKER_LOCK=newest)."""
    named = os.environ.get("NPC_WORKER_LOCK", "")
    if named == "newest":
        return None
    return ROOT / named if named else CONSTRAINTS


LOCK = lock_in_use() or CONSTRAINTS


def requirements(pyproject: Path, extras: tuple[str, ...] = ()) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    listed = [Requirement(item) for item in project["dependencies"]]
    for extra in extras:
        listed += [Requirement(item) for item in project["optional-dependencies"][extra]]
    return listed


def project_requirements() -> list[Requirement]:
    """What setup.sh installs: the worker with its dev extra, and the client."""
    client = ROOT / "clients" / "python" / "pyproject.toml"
    return requirements(ROOT / "pyproject.toml", ("dev",)) + requirements(client)


def installed_closure() -> dict[NormalizedName, Version]:
    """Every distribution the project needs, transitively, as installed here (markers and extras evaluated)."""
    found: dict[NormalizedName, Version] = {}
    pending = [(requirement, frozenset(requirement.extras)) for requirement in project_requirements()]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in OWN_DISTRIBUTIONS or (LEFT_TO_THE_MACHINE.match(name) and name != "torch"):
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{requirement} is needed but not installed: run scripts/setup.sh")
        if name != "torch":  # the machine's build, but what it needs (sympy, networkx, ...) is locked
            found[name] = Version(distribution.version)
        for text in distribution.requires or []:
            needed = Requirement(text)
            contexts = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if needed.marker is None or any(needed.marker.evaluate(context) for context in contexts):
                pending.append((needed, frozenset(needed.extras)))
    return found


def test_pins_leave_out_torch_and_the_repositorys_own_distributions() -> None:
    pinned = pins(LOCK)
    assert not [name for name in pinned if LEFT_TO_THE_MACHINE.match(name)]
    assert not OWN_DISTRIBUTIONS & set(pinned)


def test_every_project_requirement_is_pinned_inside_its_range() -> None:
    pinned = pins(LOCK)
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        if LEFT_TO_THE_MACHINE.match(name) or name in OWN_DISTRIBUTIONS:
            continue
        assert name in pinned, f"{requirement} is not pinned in {LOCK.name}: run deploy/update-constraints.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pinned[name]}, outside the project's {requirement}"
        )


def test_the_environment_is_the_lock_and_the_lock_is_the_whole_closure() -> None:
    lock = lock_in_use()
    if lock is None:
        pytest.skip("NPC_WORKER_LOCK=newest: this environment was built from the newest versions, not from a lock")
    pinned, installed = pins(lock), installed_closure()
    unpinned = sorted(set(installed) - set(pinned))
    assert not unpinned, f"{lock.name} misses {unpinned}: run deploy/update-constraints.sh"
    unused = sorted(set(pinned) - set(installed))
    assert not unused, f"{lock.name} pins {unused}, which nothing needs: run deploy/update-constraints.sh"
    drifted = {name: f"{version} installed, {pinned[name]} pinned" for name, version in installed.items()}
    drifted = {name: text for name, text in drifted.items() if installed[name] != pinned[name]}
    assert not drifted, f"this environment is not {lock.name}: {drifted}; run scripts/setup.sh"


def test_the_lock_says_how_to_refresh_it() -> None:
    header = LOCK.read_text(encoding="utf-8").split("\n", 4)[:4]
    assert any("deploy/update-constraints.sh" in line for line in header)
    assert (DEPLOY / "update-constraints.sh").is_file()


def node_pins() -> dict[NormalizedName, Version]:
    pinned: dict[NormalizedName, Version] = {}
    for line in NODE_PACKAGES.read_text(encoding="utf-8").splitlines():
        name, _, version = line.strip().partition("==")
        if version and not name.startswith("#"):
            pinned[canonicalize_name(name)] = Version(version)
    return pinned


def test_the_image_pins_are_the_nodes_for_every_locked_distribution() -> None:
    image, node, locked = pins(IMAGE_PINS), node_pins(), pins(LOCK)
    assert set(image) <= set(locked), f"{IMAGE_PINS.name} pins {sorted(set(image) - set(locked))}, not in the lock"
    for name, version in node.items():
        if name not in locked:
            continue
        assert name in image, f"the node has {name}=={version} and the lock pins it: pin it in {IMAGE_PINS.name}"
        if name in NOT_AS_ON_THE_NODE:
            assert image[name] != version, f"{name} is tested as on the node now: drop it from NOT_AS_ON_THE_NODE"
        else:
            assert image[name] == version, f"{IMAGE_PINS.name} pins {name}=={image[name]}, the node has {version}"


def test_the_floors_of_what_the_image_pins_are_the_oldest_versions_tested() -> None:
    """pyproject.toml allows nothing older than what one of the two environments runs: the lock (scripts/test.sh)
    or the image's versions (scripts/test-image-versions.sh)."""
    image, locked = pins(IMAGE_PINS), pins(LOCK)
    declared = {canonicalize_name(item.name): item.specifier for item in requirements(ROOT / "pyproject.toml")}
    for name, version in image.items():
        assert name in declared, f"the worker depends on {name} (the image pins it): list it in pyproject.toml"
        oldest_tested = min(version, locked[name])
        floors = [Version(spec.version) for spec in declared[name] if spec.operator == ">="]
        assert floors == [oldest_tested], (
            f"pyproject.toml allows {name}{declared[name]}; the oldest version tested is {oldest_tested}: "
            f"write {name}>={oldest_tested}"
        )
        assert SpecifierSet(str(declared[name])).contains(locked[name], prereleases=True)
