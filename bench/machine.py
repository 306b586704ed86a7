"""The machine a bench runs on: device memory and synchronization, host memory, and the environment record."""

from __future__ import annotations

import platform
import shlex
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.flops import device_peak_tflops

REPOSITORY = Path(__file__).resolve().parents[1]


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def synchronize(device: str) -> None:
    """Wait for the device's queued work, so a host clock read after it measures that work."""
    if is_cuda(device):
        import torch

        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    if is_cuda(device):
        import torch

        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: str) -> int | None:
    """Peak allocated device memory since the last reset; None off CUDA (no such counter)."""
    if not is_cuda(device):
        return None
    import torch

    return int(torch.cuda.max_memory_allocated(device))


def rss_bytes(pid: int | None = None) -> int | None:
    """Resident set size of a process (this one by default) from /proc; None where /proc is missing."""
    status = Path(f"/proc/{pid or 'self'}/status")
    try:
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def device_name(device: str) -> str:
    if is_cuda(device):
        import torch

        return str(torch.cuda.get_device_name(device))
    return f"cpu ({platform.processor() or platform.machine()})"


def git_commit() -> str | None:
    """The checkout's commit (with `-dirty` when it has uncommitted changes); None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def environment(device: str, command: list[str], plan: dict[str, Any]) -> dict[str, Any]:
    """What a figure depends on besides the code: device, library versions, commit, host, settings, command."""
    import diffusers
    import torch
    import transformers

    name = device_name(device)
    return {
        "device": device,
        "device_name": name,
        "peak_bf16_tflops": device_peak_tflops(name) if is_cuda(device) else None,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "hostname": socket.gethostname(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join(command),
        **plan,
    }
