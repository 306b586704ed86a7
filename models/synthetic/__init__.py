"""Synthetic full-size models: the real architectures and configs of published checkpoints, random weights.

Weights cannot be downloaded where the worker is developed and benchmarked, yet the real architectures must run.
Each synthetic model (SYNTHETIC_MODELS) rebuilds one checkpoint from its published configs with seeded random
weights of a sane scale, built on the meta device and materialized straight onto the target device. A "narrow"
scale keeps every class and code path with tiny widths and depths for CPU tests. A catalog model names one with
`synthetic = "<name>"`; `npc-worker synthetic` lists and counts them, `npc-worker make-synthetic-model` writes one
as a diffusers-format directory.
"""

from __future__ import annotations

from models.synthetic.build import build_synthetic_pipeline, count_parameters
from models.synthetic.recipe import SCALES, Scale
from models.synthetic.registry import SYNTHETIC_MODELS, SyntheticModel, UnknownSyntheticModel, lookup

__all__ = [
    "SCALES",
    "SYNTHETIC_MODELS",
    "Scale",
    "SyntheticModel",
    "UnknownSyntheticModel",
    "build_synthetic_pipeline",
    "count_parameters",
    "lookup",
]
