"""Synthetic models: the real architectures and configs of published checkpoints with seeded random weights.

Weights cannot be downloaded where the worker is developed and tested, yet the real architectures must run. Each
synthetic model (SYNTHETIC_MODELS) rebuilds one checkpoint from its published configs with seeded random weights of
a sane scale, built on the meta device and materialized straight onto the target device. Two scales: "full" (the
real sizes, for GPU measurements) and "narrow" (every class and code path with tiny widths and depths: the test
suite's and the demo's models, a job in well under a second on a CPU). A catalog model names one with
`synthetic = "<name>"`, or loads one written as a diffusers-format directory (`write_synthetic_model`, `npc-worker
synthetic write`) through `from_pretrained` like downloaded weights; `write_synthetic_model_lora` writes a random
LoRA that fits one.
"""

from __future__ import annotations

from models.synthetic.build import build_synthetic_pipeline, count_parameters
from models.synthetic.lora import LORA_FORMATS, LoraFormat
from models.synthetic.recipe import SCALES, Scale
from models.synthetic.registry import SYNTHETIC_MODELS, SyntheticModel, UnknownSyntheticModel, lookup

__all__ = [
    "LORA_FORMATS",
    "SCALES",
    "SYNTHETIC_MODELS",
    "LoraFormat",
    "Scale",
    "SyntheticModel",
    "UnknownSyntheticModel",
    "build_synthetic_pipeline",
    "count_parameters",
    "lookup",
]
