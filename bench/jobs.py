"""The jobs a bench run submits: one NPC, one base image, the row's preset, the run's own seed, the overrides."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from bench.options import BenchUsageError, overrides_for
from npc_video_client.contract import QualityPreset

PORTRAIT_SIZE = (512, 512)
BENCH_PARAMS: dict[str, Any] = {
    "npc_id": "bench",
    "npc_name": "Bench",
    "expression": "smiling",
    "emotion": "happy",
    "animation": "talking",
    "intensity": 0.6,
}


def portrait_png() -> bytes:
    """A deterministic stand-in portrait (background gradient, head, eyes): structure for the VAE to encode."""
    from PIL import Image, ImageDraw

    width, height = PORTRAIT_SIZE
    image = Image.new("RGB", PORTRAIT_SIZE)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(40 + y // 4, 60 + y // 8, 120))
    draw.ellipse([width * 0.3, height * 0.18, width * 0.7, height * 0.68], fill=(230, 190, 160))
    draw.rectangle([width * 0.25, height * 0.7, width * 0.75, height], fill=(90, 40, 120))
    for x in (0.42, 0.58):
        draw.ellipse([width * (x - 0.03), height * 0.38, width * (x + 0.03), height * 0.43], fill=(30, 30, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def base_image_uri(image: Path | None) -> str:
    """A data: URI of the --image file, or of the stand-in portrait."""
    if image is None:
        return f"data:image/png;base64,{base64.b64encode(portrait_png()).decode()}"
    try:
        data = image.read_bytes()
    except OSError as exc:
        raise BenchUsageError(f"--image {image} cannot be read: {exc.strerror or exc}") from exc
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}.get(
        image.suffix.lower()
    )
    if mime is None:
        raise BenchUsageError(f"--image {image} must be a .png, .jpg, .jpeg or .webp file")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def job_params(image_uri: str, preset: QualityPreset | str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The params of one preset's jobs: `overrides` as parse_overrides returns them (plain and `PRESET:field`)."""
    preset = str(preset)
    return {**BENCH_PARAMS, "npc_base_image": image_uri, "quality_preset": preset, **overrides_for(overrides, preset)}


def envelope(
    job_id: str,
    image_uri: str,
    preset: QualityPreset,
    seed: int,
    overrides: dict[str, Any],
    *,
    loras: list[str] | None = None,
) -> dict[str, Any]:
    """One job; `loras` (catalog names) are added to what the preset and style bring."""
    params = {**job_params(image_uri, preset, overrides), "seed": seed}
    if loras:
        params["loras"] = loras
    return {"job_id": job_id, "operation_type": "npc_response", "params": params}
