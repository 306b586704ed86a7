"""The synthetic models by name: which checkpoint each reproduces, its catalog family and its recipe.

Importing this module imports no torch, diffusers or transformers (the catalog validates names with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.synthetic.cogvideox import cogvideox15_5b_i2v, cogvideox_5b_i2v
from models.synthetic.ltx import ltx_video_2b, ltx_video_2b_090
from models.synthetic.recipe import Recipe, Scale
from models.synthetic.svd import svd_xt
from models.synthetic.wan import wan21_i2v_14b, wan22_i2v_a14b, wan22_ti2v_5b


@dataclass(frozen=True)
class SyntheticModel:
    name: str
    family: str  # a pipelines.families name; its pipeline_class is the diffusers class built
    checkpoint: str  # the published checkpoint whose architecture and configs this reproduces
    description: str
    recipe: Callable[[Scale], Recipe]


SYNTHETIC_MODELS: dict[str, SyntheticModel] = {
    model.name: model
    for model in (
        SyntheticModel(
            "wan21-i2v-14b-480p",
            "wan-i2v",
            "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
            "Wan 2.1 I2V 14B 480p: umT5-XXL, CLIP ViT-H/14, Wan VAE, 14B transformer",
            wan21_i2v_14b,
        ),
        SyntheticModel(
            "wan21-i2v-14b-720p",
            "wan-i2v",
            "Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
            "Wan 2.1 I2V 14B 720p: same architecture as 480p (umT5-XXL, CLIP ViT-H/14, Wan VAE, 14B transformer)",
            wan21_i2v_14b,
        ),
        SyntheticModel(
            "wan22-ti2v-5b",
            "wan22-ti2v",
            "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            "Wan 2.2 TI2V 5B: umT5-XXL, Wan 2.2 VAE (48 ch, 16x), 5B transformer with per-token timesteps",
            wan22_ti2v_5b,
        ),
        SyntheticModel(
            "wan22-i2v-a14b",
            "wan22-i2v",
            "Wan-AI/Wan2.2-I2V-A14B-Diffusers",
            "Wan 2.2 I2V A14B: umT5-XXL, Wan VAE, two 14B experts (transformer, transformer_2) split at 0.9",
            wan22_i2v_a14b,
        ),
        SyntheticModel(
            "ltx-video-2b-090",
            "ltx-i2v",
            "Lightricks/LTX-Video (0.9.0, 2B)",
            "LTX-Video 2B 0.9.0: T5-XXL encoder, LTX VAE (32x, 8x, plain decoder), 2B transformer",
            ltx_video_2b_090,
        ),
        SyntheticModel(
            "ltx-video-2b",
            "ltx-i2v",
            "Lightricks/LTX-Video (0.9.1, 2B)",
            "LTX-Video 2B 0.9.1: T5-XXL encoder, LTX VAE (32x, 8x, timestep-conditioned decoder), 2B transformer",
            ltx_video_2b,
        ),
        SyntheticModel(
            "cogvideox-5b-i2v",
            "cogvideox-i2v",
            "THUDM/CogVideoX-5b-I2V",
            "CogVideoX 1.0 5B I2V: T5-XXL encoder, CogVideoX VAE, 5B transformer (runs at 720x480 only)",
            cogvideox_5b_i2v,
        ),
        SyntheticModel(
            "cogvideox15-5b-i2v",
            "cogvideox-i2v",
            "THUDM/CogVideoX1.5-5B-I2V",
            "CogVideoX 1.5 5B I2V: T5-XXL encoder, CogVideoX VAE, 5B transformer with temporal patches (any size)",
            cogvideox15_5b_i2v,
        ),
        SyntheticModel(
            "svd-xt",
            "svd",
            "stabilityai/stable-video-diffusion-img2vid-xt",
            "Stable Video Diffusion XT: CLIP ViT-H/14 with projection, temporal-decoder VAE, 1.5B UNet, 25 frames",
            svd_xt,
        ),
    )
}


class UnknownSyntheticModel(ValueError):
    """A synthetic model name that is not in the registry; the message lists the known ones."""


def known_names() -> str:
    return ", ".join(sorted(SYNTHETIC_MODELS))


def lookup(name: str) -> SyntheticModel:
    model = SYNTHETIC_MODELS.get(name)
    if model is None:
        raise UnknownSyntheticModel(f"unknown synthetic model {name!r}; known: {known_names()}")
    return model
