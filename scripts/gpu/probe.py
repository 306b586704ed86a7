"""What the GPU check runs on, before anything expensive: device, versions, unmet requirements, imports, ffmpeg,
and the speed packages (scripts/gpu/speed_probe.py). Prints a report and writes it as JSON; exits 1 when the
worker's modules do not import, ffmpeg cannot encode H.264 or the requested CUDA device is missing (every later
stage would fail the same way).

    python3 scripts/gpu/probe.py --device cuda --out probe.json [--site DIR] [--speed-site DIR] [--pyproject FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from requirements import carried_unmet, installed_versions, project_unmet
from wheel_list import LIST, parse

PACKAGES = (
    "torch",
    "triton",
    "diffusers",
    "transformers",
    "accelerate",
    "peft",
    "safetensors",
    "tokenizers",
    "huggingface-hub",
    "numpy",
    "pillow",
    "pydantic",
    "typing-extensions",
    "imageio-ffmpeg",
    "pytest",
)
# What every stage after this one imports: the CLI, the bench, the runner and the synthetic builders.
MODULES = ("worker.cli", "bench.cli", "bench.session", "worker.runtime", "models.synthetic.build", "pipelines.families")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _run(command: list[str]) -> str | None:
    """The first lines of a command's output; None when it is missing or fails."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return "\n".join(done.stdout.strip().splitlines()[:4])


def device_facts(device: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "c_compiler": shutil.which("cc") or shutil.which("gcc"),  # torch.compile builds Triton launchers with it
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        properties = torch.cuda.get_device_properties(device)
        facts.update(
            device_name=properties.name,
            capability=f"{properties.major}.{properties.minor}",
            multiprocessors=properties.multi_processor_count,
            memory_gib=round(properties.total_memory / 2**30, 1),
            nvidia_smi=_run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem", "--format=csv"]
            ),
        )
    return facts


def import_checks() -> dict[str, str]:
    """Module (or pipeline class) -> "ok" or the error, so a missing wheel shows here and not mid-bench."""
    results: dict[str, str] = {}
    for module in MODULES:
        try:
            importlib.import_module(module)
            results[module] = "ok"
        except Exception as exc:  # any import failure is the finding: record it and go on
            results[module] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
    try:
        import diffusers

        from pipelines.families import FAMILIES

        for family in FAMILIES.values():
            getattr(diffusers, family.pipeline_class)
            results[f"diffusers.{family.pipeline_class}"] = "ok"
    except Exception as exc:  # as above: the failure is the result
        results["diffusers pipelines"] = f"{type(exc).__name__}: {exc}"
    return results


def ffmpeg_check() -> dict[str, Any]:
    """The ffmpeg the worker encodes with (imageio-ffmpeg's, or IMAGEIO_FFMPEG_EXE) and whether it has libx264."""
    try:
        import imageio_ffmpeg

        executable = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # the finding: no ffmpeg means no MP4, so every job would fail
        return {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    version = _run([executable, "-hide_banner", "-version"])
    encoders = _run([executable, "-hide_banner", "-h", "encoder=libx264"])
    ok = version is not None and encoders is not None and "libx264" in encoders
    return {"ok": ok, "executable": executable, "detail": (version or "does not run").splitlines()[0]}


def redis_server() -> dict[str, Any]:
    """The redis-server the queue stage would start (the node's, or the one the wheels stage unpacked)."""
    executable = shutil.which("redis-server")
    version = _run([executable, "--version"]) if executable else None
    return {"ok": version is not None, "executable": executable, "detail": version or "not found on PATH"}


def speed_check(device: str, speed_site: Path | None, candidates: str | None) -> dict[str, Any]:
    """scripts/gpu/speed_probe.py in a child process, with the speed packages' folder first on its path."""
    env = dict(os.environ)
    if speed_site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(speed_site), env.get("PYTHONPATH")]))
    command = [sys.executable, str(Path(__file__).with_name("speed_probe.py")), "--device", device]
    if candidates:
        command += ["--candidates", candidates]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False, env=env)
    except subprocess.TimeoutExpired:
        return {"status": "timed out after 180 s"}
    if done.returncode != 0:
        return {"status": f"exit {done.returncode}", "stderr": done.stderr[-2000:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--site", type=Path, help="where the carried wheels were installed")
    parser.add_argument("--speed-site", type=Path, help="where the speed packages were installed")
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--attention", help="attention backends to try one call of (default: speed_probe's list)")
    args = parser.parse_args()

    versions = installed_versions()
    left_out = {entry.name: entry.note for entry in parse(LIST.read_text(encoding="utf-8")) if entry.kind == "left-out"}
    unmet = project_unmet(args.pyproject, versions, frozenset(left_out))
    if args.site is not None:
        unmet += carried_unmet(args.site, versions)
    report: dict[str, Any] = {
        "device": args.device,
        "facts": device_facts(args.device),
        "versions": {name: _version(name) for name in PACKAGES},
        "unmet_requirements": [gap.describe() for gap in unmet],
        "left_out": left_out,  # dependencies not carried on purpose (scripts/gpu/wheels.txt), never imported here
        "imports": import_checks(),
        "ffmpeg": ffmpeg_check(),
        "redis_server": redis_server(),
        "speed": speed_check(args.device, args.speed_site, args.attention),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))

    problems = [f"import {name}: {result}" for name, result in report["imports"].items() if result != "ok"]
    if not report["ffmpeg"]["ok"]:
        problems.append(f"ffmpeg without libx264: {report['ffmpeg']['detail']}")
    if args.device.startswith("cuda") and not report["facts"]["cuda_available"]:
        problems.append(f"device {args.device}: torch.cuda.is_available() is False")
    for problem in problems:
        print(f"probe: {problem}", file=sys.stderr)
    for gap in report["unmet_requirements"]:
        print(f"probe: unmet requirement: {gap}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
