"""deploy/constraints.txt: the images' pinned dependency set. Every runtime dependency pinned, each pin inside
the project's own range, torch left to the images, and the way to regenerate it written down."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.artifacts import DEPLOY, ROOT

CONSTRAINTS = DEPLOY / "constraints.txt"
LEFT_TO_THE_IMAGES = re.compile(r"^(torch|triton|nvidia-[a-z0-9-]+)$")
# Installed from this repository's source by the images, never from an index.
OWN_DISTRIBUTIONS = {"npc-video-client", "npc-video-worker"}


def pins() -> dict[str, Version]:
    pinned: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
        assert match is not None, f"{CONSTRAINTS.name}: {line!r} is not a `name==version` pin"
        name = canonicalize_name(match.group(1))
        assert name not in pinned, f"{CONSTRAINTS.name}: {name} pinned twice"
        pinned[name] = Version(match.group(2))
    return pinned


def runtime_requirements() -> list[Requirement]:
    requirements = []
    for pyproject in (ROOT / "pyproject.toml", ROOT / "clients" / "python" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        requirements += [Requirement(item) for item in project["dependencies"]]
    return requirements


def test_pins_leave_out_torch_and_the_repositorys_own_distributions() -> None:
    pinned = pins()
    assert not [name for name in pinned if LEFT_TO_THE_IMAGES.match(name)]
    assert not OWN_DISTRIBUTIONS & set(pinned)


def test_every_runtime_dependency_is_pinned_inside_its_range() -> None:
    pinned = pins()
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        if LEFT_TO_THE_IMAGES.match(name) or name in OWN_DISTRIBUTIONS:
            continue
        assert name in pinned, f"{requirement} is not pinned in {CONSTRAINTS.name}: run deploy/update-constraints.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{CONSTRAINTS.name} pins {name}=={pinned[name]}, outside the project's {requirement}"
        )


def test_the_file_says_how_to_regenerate_it() -> None:
    header = CONSTRAINTS.read_text(encoding="utf-8").split("\n", 4)[:4]
    assert any("deploy/update-constraints.sh" in line for line in header)
    assert (DEPLOY / "update-constraints.sh").is_file()
