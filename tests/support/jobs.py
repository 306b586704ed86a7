"""Job envelopes and base images for tests: small sizes so the tiny model runs in well under a second."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image


def png_bytes(size: tuple[int, int] = (96, 64), color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(0, size[0], 8):  # some structure, so frames are not flat
        for y in range(size[1]):
            image.putpixel((x, y), (20, 40, 200))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def params(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "npc_id": "npc-7",
        "npc_name": "Mira",
        "npc_base_image": data_uri(png_bytes()),
        "expression": "interested",
        "emotion": "pleased",
        "animation": "idle",
        "intensity": 0.5,
        "quality_preset": "realtime",
        "width": 64,
        "height": 64,
        "duration": 1.0,
        "steps": 2,
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def envelope(job_id: str = "job-1", **param_overrides: Any) -> dict[str, Any]:
    return {"job_id": job_id, "operation_type": "npc_response", "params": params(**param_overrides)}
