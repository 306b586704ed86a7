"""The wheels scripts/gpu-wheels.sh downloads: scripts/gpu/wheels.txt with versions taken from this environment.

Run with the project's .venv Python: `need` and `fallback` entries take the version installed there, so the node
runs what the tests ran (a `need` pinned in the list, with a comment saying why, keeps its pin). Prints one line
per entry, `KIND NAME==VERSION` (need, speed, fallback) or `unavailable NAME NOTE` / `left-out NAME NOTE`; exits 2
naming the line of a malformed list or a name .venv does not hold.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

LIST = Path(__file__).with_name("wheels.txt")
KINDS = ("need", "speed", "fallback", "unavailable", "left-out")
NOTED = ("unavailable", "left-out")  # kinds that carry nothing and say why
SPEC = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(==(?P<version>[A-Za-z0-9.+!_-]+))?$")


class WheelListError(ValueError):
    """A malformed wheels.txt, or an entry this environment cannot resolve; the message names the line."""


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    version: str | None
    note: str

    def line(self) -> str:
        if self.kind in NOTED:
            return f"{self.kind} {self.name} {self.note}"
        return f"{self.kind} {self.name}=={self.version}"


def canonical(name: str) -> str:
    """PEP 503 normalized name (`Typing_Extensions` -> `typing-extensions`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str, source: str = "wheels.txt") -> list[Entry]:
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        body, _, comment = raw.partition("#")
        kind, _, rest = body.strip().partition(" ")
        if not kind:
            continue
        spec, _, words = rest.strip().partition(" ")
        words, comment = words.strip(), comment.strip()
        where = f"{source} line {number}"
        if kind not in KINDS:
            raise WheelListError(f"{where}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        match = SPEC.match(spec)
        if match is None:
            raise WheelListError(f"{where}: {spec!r} is not NAME or NAME==VERSION")
        name, version = canonical(match["name"]), match["version"]
        if name in seen:
            raise WheelListError(f"{where}: {name} is listed again (first on line {seen[name]}); keep one entry")
        seen[name] = number
        if kind in NOTED:
            if not words:
                raise WheelListError(f"{where}: {kind} {name} needs a note saying why")
            entries.append(Entry(kind, name, version, words))
            continue
        if words:
            raise WheelListError(f"{where}: unexpected {words!r} after {spec}; a comment starts with #")
        if kind == "speed" and version is None:
            raise WheelListError(f"{where}: speed package {name} needs a pinned version (NAME==VERSION)")
        if kind == "fallback" and version is not None:
            raise WheelListError(f"{where}: fallback {name} takes its version from .venv; write the bare name")
        if kind == "need" and version is not None and not comment:
            raise WheelListError(f"{where}: need {spec} pins a version other than .venv's: say why in a # comment")
        entries.append(Entry(kind, name, version, comment))
    return entries


def resolve(entries: list[Entry]) -> list[Entry]:
    """`need` (unless pinned) and `fallback` entries with the version installed in this environment."""
    resolved = []
    for entry in entries:
        if entry.kind not in ("need", "fallback") or entry.version is not None:
            resolved.append(entry)
            continue
        try:
            version = metadata.version(entry.name)
        except metadata.PackageNotFoundError as exc:
            raise WheelListError(
                f"{entry.kind} {entry.name} is not installed in this environment ({sys.prefix}): "
                "run scripts/gpu-wheels.sh with the project's .venv (scripts/setup.sh makes it)"
            ) from exc
        resolved.append(Entry(entry.kind, entry.name, version, entry.note))
    return resolved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=LIST, help="the wheel list (default: scripts/gpu/wheels.txt)")
    args = parser.parse_args()
    try:
        entries = resolve(parse(args.file.read_text(encoding="utf-8"), str(args.file)))
    except (OSError, WheelListError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for entry in entries:
        print(entry.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
