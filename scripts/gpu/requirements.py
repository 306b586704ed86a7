"""Requirements the GPU node fails: the carried wheels' (Requires-Dist) and the project's (pyproject.toml),
each checked against what this interpreter finds on its path (the node's image plus the carried wheels).

`pip install --no-deps` installs the carried wheels without looking at what they require, so a node whose own copy
of a dependency is too old would fail only at import. scripts/gpu-check.sh asks this module which fallback wheels
(.whl/fallback) fix such a gap and installs just those; scripts/gpu/probe.py reports what is still unmet.

    python3 scripts/gpu/requirements.py fallbacks SITE DIR   # the DIR wheels to install: one path a line
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

# Distributions that travel as source on PYTHONPATH (clients/python), not as installed packages.
LOCAL = {"npc-video-client"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Unmet:
    needed_by: str  # a distribution, or "pyproject.toml"
    requirement: str
    found: str | None  # the version on the path; None when the distribution is missing

    def describe(self) -> str:
        found = f"found {self.found}" if self.found else "not installed"
        return f"{self.needed_by} requires {self.requirement}: {found}"


def installed_versions() -> dict[str, str]:
    """Name -> version of every distribution on sys.path; the first one found wins, as for imports."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(canonical(name), dist.version)
    return versions


def _unmet(requirement: Requirement, needed_by: str, versions: dict[str, str]) -> Unmet | None:
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
        return None
    name = canonical(requirement.name)
    if name in LOCAL:
        return None
    found = versions.get(name)
    if found is None:
        return Unmet(needed_by, str(requirement), None)
    try:
        ok = requirement.specifier.contains(Version(found), prereleases=True)
    except InvalidVersion:
        ok = False
    return None if ok else Unmet(needed_by, str(requirement), found)


def carried_unmet(site: Path, versions: dict[str, str]) -> list[Unmet]:
    """What the distributions installed under `site` require and the path does not satisfy."""
    unmet = []
    for dist in metadata.distributions(path=[str(site)]):
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue  # a malformed requirement of a third-party wheel is its own problem, not a gap here
            gap = _unmet(requirement, dist.metadata["Name"], versions)
            if gap is not None:
                unmet.append(gap)
    return unmet


def project_unmet(pyproject: Path, versions: dict[str, str], left_out: frozenset[str] = frozenset()) -> list[Unmet]:
    """The project's own dependencies that the path does not satisfy, except those the wheel list leaves out on
    purpose (`left_out`: canonical names of wheels.txt's `left-out` entries, never imported by the check)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    unmet = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        if canonical(requirement.name) in left_out:
            continue
        gap = _unmet(requirement, "pyproject.toml", versions)
        if gap is not None:
            unmet.append(gap)
    return unmet


def wheel_name_version(path: Path) -> tuple[str, str]:
    """`typing_extensions-4.16.0-py3-none-any.whl` -> ("typing-extensions", "4.16.0")."""
    name, version = path.name.split("-")[:2]
    return canonical(name), version


def fallbacks_to_install(site: Path, directory: Path) -> list[Path]:
    """The fallback wheels whose distribution a carried wheel requires in a version the node does not have."""
    unmet = carried_unmet(site, installed_versions())
    chosen = []
    for wheel in sorted(directory.glob("*.whl")):
        name, version = wheel_name_version(wheel)
        gaps = [gap for gap in unmet if canonical(Requirement(gap.requirement).name) == name]
        if gaps and all(Requirement(gap.requirement).specifier.contains(version, prereleases=True) for gap in gaps):
            chosen.append(wheel)
    return chosen


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "fallbacks":
        print("usage: requirements.py fallbacks SITE DIR", file=sys.stderr)
        return 2
    site, directory = Path(argv[1]), Path(argv[2])
    for wheel in fallbacks_to_install(site, directory):
        print(wheel)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
