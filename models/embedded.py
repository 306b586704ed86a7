"""The embedded default catalog: a tiny Wan model, two tiny LoRAs and a demo NPC, built on first use.

With no NPC_WORKER_CATALOG the worker runs on this, so a fresh machine shows a finished MP4 without any
download. The model is the synthetic Wan 2.1 I2V at the narrow scale (models.synthetic), written as a
diffusers-format directory and loaded with `from_pretrained` like real weights; the catalog is written as a real
catalog file and loaded through `load_catalog`, like any other.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

from models.catalog import Catalog, load_catalog
from models.synthetic.lora import LoraFormat

DEMO_MODEL = "wan21-i2v-14b-480p"  # a synthetic model, at the narrow scale
DEMO_LORA_STRENGTH = 0.5  # the demo's styles visibly change its clips

log = logging.getLogger(__name__)

EMBEDDED_CATALOG = """\
# Written by npc-worker: the embedded demo catalog (tiny random weights, no downloads).
[defaults]
model = "tiny-wan"
negative_prompt = "low quality, blurry"

[models.tiny-wan]
family = "wan-i2v"
path = "tiny-wan-i2v"
dtype = "float32"

[models.tiny-wan.presets.realtime]
steps = 2

[loras.tiny-glow]
path = "loras/tiny-glow.safetensors"
weight = 0.8
trigger = "soft glow"

[loras.tiny-comfy]
path = "loras/tiny-comfy.safetensors"
weight = 1.0

[styles.anime]
loras = ["tiny-glow"]
prompt_suffix = "anime style, cel shading"

[npcs.alice]
base_image = "npcs/alice.png"
"""


def draw_demo_portrait(path: Path, size: tuple[int, int] = (320, 240)) -> None:
    """A simple drawn face: enough for an image-to-video start frame."""
    image = Image.new("RGB", size, (92, 140, 200))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.ellipse((width * 0.3, height * 0.15, width * 0.7, height * 0.85), fill=(240, 200, 170))
    draw.ellipse((width * 0.4, height * 0.38, width * 0.46, height * 0.46), fill=(40, 40, 60))
    draw.ellipse((width * 0.54, height * 0.38, width * 0.6, height * 0.46), fill=(40, 40, 60))
    draw.arc((width * 0.42, height * 0.5, width * 0.58, height * 0.7), 20, 160, fill=(160, 60, 60), width=3)
    image.save(path)


def _write_catalog(path: Path) -> None:
    path.write_text(EMBEDDED_CATALOG, encoding="utf-8")


def _build_once(target: Path, build: Callable[[Path], None]) -> None:
    """Build into a scratch path and rename it into place, so concurrent workers never see half a build."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    built = scratch / target.name
    try:
        build(built)
        try:
            os.rename(built, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_model(path: Path) -> None:
    import torch

    from models.synthetic.writer import write_synthetic_model

    write_synthetic_model(path, DEMO_MODEL, dtype=torch.float32, device="cpu", seed=0, scale="narrow")


def _lora_writer(seed: int, lora_format: LoraFormat) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        import torch

        from models.synthetic.writer import write_synthetic_model_lora

        write_synthetic_model_lora(
            path,
            DEMO_MODEL,
            dtype=torch.float32,
            seed=seed,
            scale="narrow",
            lora_format=lora_format,
            strength=DEMO_LORA_STRENGTH,
        )

    return write


def ensure_embedded_catalog(data_dir: Path) -> Catalog:
    """Write whatever of the demo catalog is missing under `data_dir`, then load it."""
    data_dir = data_dir.expanduser().resolve()
    if not (data_dir / "tiny-wan-i2v").exists():
        log.info("building the tiny demo model in %s", data_dir / "tiny-wan-i2v")
    _build_once(data_dir / "tiny-wan-i2v", _write_model)
    _build_once(data_dir / "loras" / "tiny-glow.safetensors", _lora_writer(1, "diffusers"))
    _build_once(data_dir / "loras" / "tiny-comfy.safetensors", _lora_writer(2, "kohya"))
    _build_once(data_dir / "npcs" / "alice.png", draw_demo_portrait)
    catalog_path = data_dir / "catalog.toml"
    _build_once(catalog_path, _write_catalog)
    return load_catalog(catalog_path)
