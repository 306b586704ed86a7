"""Per-model speed settings (`[models.X.speed]` in the catalog), applied once right after a model is loaded.

Each setting is a diffusers feature that trades memory or exactness for speed. Those that need CUDA (kernels,
torch.compile, fp8 storage) are skipped with a log line on other devices, so one catalog serves CPU test runs and
GPU production alike. Settings act on the pipeline's denoiser(s): `transformer`, `transformer_2`, `unet`.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

DENOISER_COMPONENTS = ("transformer", "transformer_2", "unet")
# Attention backends that run without CUDA; every other one is skipped on CPU.
CPU_ATTENTION_BACKENDS = frozenset({"native", "_native_math"})


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FirstBlockCache(_Spec):
    """Skip the remaining blocks while the first block's residual changes less than `threshold`."""

    type: Literal["first_block"]
    threshold: Annotated[float, Field(gt=0.0)] = 0.05

    def diffusers_config(self) -> Any:
        from diffusers.hooks import FirstBlockCacheConfig

        return FirstBlockCacheConfig(threshold=self.threshold)


class TaylorSeerCache(_Spec):
    """Predict block outputs from a Taylor expansion between full steps every `cache_interval` steps."""

    type: Literal["taylorseer"]
    cache_interval: Annotated[int, Field(ge=1)] = 5
    disable_cache_before_step: Annotated[int, Field(ge=0)] = 3
    disable_cache_after_step: Annotated[int | None, Field(ge=0)] = None
    max_order: Annotated[int, Field(ge=0)] = 1
    use_lite_mode: bool = False

    def diffusers_config(self) -> Any:
        from diffusers.hooks import TaylorSeerCacheConfig

        return TaylorSeerCacheConfig(**self.model_dump(exclude={"type"}))


class MagCache(_Spec):
    """Skip blocks while the accumulated magnitude-ratio error stays under `threshold`.

    The ratios are checkpoint-specific: run once with `calibrate = true` (nothing is skipped, the ratios are
    logged) and copy them into `mag_ratios`. `num_inference_steps` should be the steps this model usually runs.
    """

    type: Literal["magcache"]
    threshold: Annotated[float, Field(gt=0.0)] = 0.06
    max_skip_steps: Annotated[int, Field(ge=1)] = 3
    retention_ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    num_inference_steps: Annotated[int, Field(ge=1)] = 28
    mag_ratios: Annotated[list[float] | None, Field(min_length=1)] = None
    calibrate: bool = False

    @model_validator(mode="after")
    def _ratios_or_calibration(self) -> MagCache:
        if self.mag_ratios is None and not self.calibrate:
            raise ValueError(
                "magcache needs mag_ratios (they depend on the checkpoint): run once with calibrate = true, "
                "then copy the logged ratios into mag_ratios = [...]"
            )
        return self

    def diffusers_config(self) -> Any:
        from diffusers.hooks import MagCacheConfig

        return MagCacheConfig(**self.model_dump(exclude={"type"}))


CacheSpec = Annotated[FirstBlockCache | TaylorSeerCache | MagCache, Field(discriminator="type")]


class SpeedSettings(_Spec):
    """`[models.X.speed]`: everything off by default, so a model runs exactly as diffusers ships it."""

    attention_backend: str | None = None
    compile: bool = False
    cache: CacheSpec | None = None
    vae_tiling: bool = False
    fp8_layerwise: bool = False

    @field_validator("attention_backend")
    @classmethod
    def _known_backend(cls, backend: str | None) -> str | None:
        if backend is None:
            return None
        from diffusers.models.attention_dispatch import AttentionBackendName

        known = sorted(member.value for member in AttentionBackendName)
        if backend not in known:
            raise ValueError(f"unknown attention backend {backend!r}; diffusers knows: {', '.join(known)}")
        return backend


def apply_speed(pipe: Any, speed: SpeedSettings, device: str, model_name: str) -> None:
    """Apply each configured setting to a freshly loaded pipeline; log the ones this device cannot use.

    Order matters: attention backend, cache hooks and fp8 casting come before compilation, which traces them.
    """
    import torch

    on_cuda = torch.device(device).type == "cuda"
    denoisers = [pipe.components[name] for name in DENOISER_COMPONENTS if pipe.components.get(name) is not None]
    if speed.attention_backend is not None:
        _set_attention_backend(denoisers, speed.attention_backend, on_cuda, model_name, device)
    if speed.cache is not None:
        _enable_cache(denoisers, speed.cache, model_name)
    if speed.fp8_layerwise:
        _enable_fp8_storage(denoisers, on_cuda, model_name, device)
    if speed.vae_tiling:
        _enable_vae_tiling(pipe, model_name)
    if speed.compile:
        _compile_repeated_blocks(denoisers, on_cuda, model_name, device)


def _ignored(model_name: str, setting: str, reason: str) -> None:
    """`reason` reads on from "ignored": "on cpu: ..." or "because ..."."""
    log.warning("model %s: speed setting %s ignored %s", model_name, setting, reason)


def _set_attention_backend(denoisers: list[Any], backend: str, on_cuda: bool, model_name: str, device: str) -> None:
    if not on_cuda and backend not in CPU_ATTENTION_BACKENDS:
        _ignored(model_name, f"attention_backend={backend!r}", f"on {device}: it needs a CUDA device")
        return
    from diffusers import attention_backend as process_default_backend

    for denoiser in denoisers:
        # set_attention_backend also makes its backend the process-wide default, which other models would then
        # use; the context manager puts the previous default back on exit.
        try:
            with process_default_backend():
                denoiser.set_attention_backend(backend)
        except (RuntimeError, ImportError, OSError) as exc:  # e.g. flash-attn not installed, hub kernel not cached
            _ignored(model_name, f"attention_backend={backend!r}", f"because {exc} (the default backend stays)")
            return
    log.info("model %s: attention backend %s", model_name, backend)


def _enable_cache(denoisers: list[Any], cache: FirstBlockCache | TaylorSeerCache | MagCache, model_name: str) -> None:
    from diffusers.models.cache_utils import CacheMixin

    for denoiser in denoisers:
        if not isinstance(denoiser, CacheMixin):
            _ignored(model_name, f"cache={cache.type!r}", f"because {type(denoiser).__name__} does not support caching")
            continue
        denoiser.enable_cache(cache.diffusers_config())
        log.info("model %s: %s cache on %s", model_name, cache.type, type(denoiser).__name__)


def _enable_fp8_storage(denoisers: list[Any], on_cuda: bool, model_name: str, device: str) -> None:
    """Weights stored as float8_e4m3fn and upcast per layer to the model's dtype: about half the memory of bf16."""
    import torch

    if not on_cuda:
        _ignored(model_name, "fp8_layerwise", f"on {device}: fp8 weight storage is for CUDA devices")
        return
    for denoiser in denoisers:
        denoiser.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=denoiser.dtype)
    log.info("model %s: fp8 layerwise weight storage", model_name)


def _enable_vae_tiling(pipe: Any, model_name: str) -> None:
    """Decode in overlapping tiles: bounds VAE memory at large sizes, works on every device."""
    vae = pipe.components.get("vae")
    if vae is None or not hasattr(vae, "enable_tiling"):
        _ignored(model_name, "vae_tiling", f"because {type(vae).__name__} has no tiled decoding")
        return
    vae.enable_tiling()
    log.info("model %s: VAE tiling", model_name)


def _compile_repeated_blocks(denoisers: list[Any], on_cuda: bool, model_name: str, device: str) -> None:
    """torch.compile of each repeated transformer block (regional compilation: short compile, full speed-up)."""
    if not on_cuda:
        _ignored(model_name, "compile", f"on {device}: torch.compile is used on CUDA devices only")
        return
    for denoiser in denoisers:
        if not getattr(denoiser, "_repeated_blocks", None):
            _ignored(model_name, "compile", f"because {type(denoiser).__name__} declares no repeated blocks")
            continue
        denoiser.compile_repeated_blocks()
        log.info("model %s: compiling %s blocks on first use", model_name, type(denoiser).__name__)
