"""Checkpoints and LoRAs for tests: the synthetic models at the narrow scale, written as diffusers-format
directories and loaded through `from_pretrained`, the path production weights take (nothing is mocked or
downloaded). Same seed, same weights: tests compare frames across runs."""

from __future__ import annotations

from pathlib import Path

import torch

from models.synthetic.lora import LoraFormat
from models.synthetic.writer import write_synthetic_model, write_synthetic_model_lora

# The synthetic model that stands for each family in the tests. CogVideoX is 1.5 (any size on the grid): 1.0 takes
# one size only (models/synthetic/cogvideox.py). LTX is 0.9.0: the 0.9.1 decoder's noise is not seeded by the job
# (models/synthetic/ltx.py), and tests compare frames across runs.
FAMILY_MODELS: dict[str, str] = {
    "wan-i2v": "wan21-i2v-14b-480p",
    "wan22-i2v": "wan22-i2v-a14b",
    "wan22-ti2v": "wan22-ti2v-5b",
    "ltx-i2v": "ltx-video-2b-090",
    "cogvideox-i2v": "cogvideox15-5b-i2v",
    "svd": "svd-xt",
}
FAMILIES = sorted(FAMILY_MODELS)

# LoRAs strong enough that every weight visibly changes the frames of a two-layer model.
TEST_LORA_STRENGTH = 0.5


def write_model(family: str, directory: Path, seed: int = 0) -> Path:
    """The family's narrow synthetic model in float32 (what the test catalogs load) under `directory`."""
    write_synthetic_model(
        directory, FAMILY_MODELS[family], dtype=torch.float32, device="cpu", seed=seed, scale="narrow"
    )
    return directory


def write_lora(
    path: Path, *, seed: int, family: str = "wan-i2v", lora_format: LoraFormat = "diffusers", rank: int = 4
) -> Path:
    """A random LoRA for the family's narrow model (a Wan 2.2 one fits either expert and the 5B model alike)."""
    write_synthetic_model_lora(
        path,
        FAMILY_MODELS[family],
        dtype=torch.float32,
        seed=seed,
        scale="narrow",
        rank=rank,
        lora_format=lora_format,
        strength=TEST_LORA_STRENGTH,
    )
    return path
