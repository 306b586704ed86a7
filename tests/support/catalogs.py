"""Catalog files for tests, pointing at tiny checkpoints built in the session."""

from __future__ import annotations

from pathlib import Path


def tiny_catalog_text(model_dir: Path, loras: dict[str, Path], extra: str = "") -> str:
    lora_tables = "\n".join(
        f'[loras.{name}]\npath = "{path}"\nweight = 1.0\ntrigger = "{name} look"\n' for name, path in loras.items()
    )
    return f"""
[defaults]
model = "tiny-wan"

[models.tiny-wan]
family = "wan-i2v"
path = "{model_dir}"
dtype = "float32"

{lora_tables}
{extra}
"""


def write_catalog(directory: Path, text: str) -> Path:
    path = directory / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path
