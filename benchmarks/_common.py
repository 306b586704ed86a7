"""Shared set-up of the benchmarks: tiny checkpoints in a scratch folder and job envelopes."""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.support.catalogs import tiny_catalog_text, write_catalog
from tests.support.jobs import envelope
from tests.support.models import write_lora, write_model


def scratch_catalog() -> tuple[Path, Path]:
    """(scratch folder, catalog path) with a tiny Wan model and three tiny LoRAs."""
    root = Path(tempfile.mkdtemp(prefix="npc-bench-"))
    write_model("wan-i2v", root / "tiny-wan")
    loras = {}
    for index, name in enumerate(("glow", "sparkle", "comfy")):
        loras[name] = root / f"{name}.safetensors"
        write_lora(loras[name], seed=index + 1, lora_format="kohya" if name == "comfy" else "diffusers")
    return root, write_catalog(root, tiny_catalog_text(root / "tiny-wan", loras))


def job(job_id: str, **params: Any) -> dict[str, Any]:
    return envelope(job_id, **params)


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):8.1f} ms (min {min(values):.1f}, n={len(values)})"
