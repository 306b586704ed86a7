"""Per-model speed settings (`[models.X.speed]` in the catalog), applied once right after a model is loaded.

Each setting is a diffusers (or torchao) feature that trades memory or exactness for speed. Those that need CUDA
(kernels, torch.compile, fp8) are skipped with a log line on other devices, so one catalog serves CPU test runs and
GPU production alike; `compile_cpu = true` opts a CPU into compilation (tests, benchmarks). Settings act on the
pipeline's denoiser(s): `transformer`, `transformer_2`, `unet`. `lora_slots` and `lora_rank` are read by the LoRA
cache (models.loras), not here: they decide how adapters are loaded, which compilation depends on.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

log = logging.getLogger(__name__)

DENOISER_COMPONENTS = ("transformer", "transformer_2", "unet")
# Attention backends that run without CUDA; every other one is skipped on CPU.
CPU_ATTENTION_BACKENDS = frozenset({"native", "_native_math"})
# torchao's float8 GEMMs (float8 x float8 -> bf16 on tensor cores) need Ada (8.9) or Hopper (9.0) and later.
FP8_MATMUL_CAPABILITY = (8, 9)
# float8 matrix multiplication (torch._scaled_mm) needs both sides of a linear layer divisible by 16.
FP8_MATMUL_MULTIPLE = 16
# A layer of a repeated block: `blocks.N.` (Wan) or `transformer_blocks.N.` (LTX-Video, CogVideoX).
FP8_BLOCK_LAYER = re.compile(r"(^|\.)(transformer_)?blocks\.\d+\.")
CompileBackend = Literal["inductor", "eager", "aot_eager"]
TAYLORSEER_HOOK = "taylorseer_cache"  # diffusers.hooks.taylorseer_cache's hook name


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
    """Predict block outputs from a Taylor expansion between full steps every `cache_interval` steps.

    Its steps count denoiser calls (two per step with guidance). Which layers it predicts is a list of regular
    expressions matched against whole module names; diffusers' default (`^blocks.*attn`) matches no layer of Wan
    (`blocks.N.attn1`), so give `cache_identifiers` (e.g. `["^blocks\\.\\d+\\.attn[12]$"]`) or `use_lite_mode`.
    """

    type: Literal["taylorseer"]
    cache_interval: Annotated[int, Field(ge=1)] = 5
    disable_cache_before_step: Annotated[int, Field(ge=0)] = 3
    disable_cache_after_step: Annotated[int | None, Field(ge=0)] = None
    max_order: Annotated[int, Field(ge=0)] = 1
    use_lite_mode: bool = False
    cache_identifiers: Annotated[list[str] | None, Field(min_length=1)] = None
    skip_predict_identifiers: Annotated[list[str] | None, Field(min_length=1)] = None

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
    compile_backend: CompileBackend = "inductor"  # eager / aot_eager: dynamo traces only (tests, debugging)
    compile_cpu: bool = False  # also compile on a CPU device; off: compile is for CUDA devices only
    lora_slots: Annotated[int | None, Field(ge=1, le=8)] = None  # LoRA hotswap slots (models.lora_slots); None: named
    lora_rank: Annotated[int, Field(ge=1, le=1024)] = 128  # hotswap slots are padded to this rank
    cache: CacheSpec | None = None
    vae_tiling: bool = False
    vae_slicing: bool = False
    fp8_layerwise: bool = False  # fp8 weight storage, compute in the model's dtype
    fp8_matmul: bool = False  # torchao float8 GEMMs: fp8 activations and weights on the tensor cores

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

    @model_validator(mode="after")
    def _one_fp8_mode(self) -> SpeedSettings:
        if self.fp8_layerwise and self.fp8_matmul:
            raise ValueError(
                "fp8_layerwise and fp8_matmul are both on; choose one: fp8_matmul quantizes the weights itself "
                "(float8 GEMMs), fp8_layerwise only stores them in float8 and computes in the model's dtype"
            )
        return self

    def compiles_on(self, device: str) -> bool:
        """Whether `compile` takes effect on this device (CUDA, or a CPU with `compile_cpu`)."""
        return self.compile and (device.startswith("cuda") or self.compile_cpu)


def apply_speed(pipe: Any, speed: SpeedSettings, device: str, model_name: str) -> None:
    """Apply each configured setting to a freshly loaded pipeline; log the ones this device cannot use.

    Order matters: attention backend, cache hooks and fp8 (storage or quantization) come before compilation, which
    traces them.
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
    if speed.fp8_matmul:
        _enable_fp8_matmul(denoisers, device, model_name)
    if speed.vae_tiling:
        _enable_vae(pipe, "tiling", model_name)
    if speed.vae_slicing:
        _enable_vae(pipe, "slicing", model_name)
    if speed.compile:
        _compile_repeated_blocks(denoisers, speed, device, model_name)


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
        if isinstance(cache, TaylorSeerCache) and not _hooked(denoiser, TAYLORSEER_HOOK):
            log.warning(
                "model %s: the taylorseer cache matches no layer of %s, so it changes nothing: set cache_identifiers "
                "to patterns of its layer names (or use_lite_mode = true)",
                model_name,
                type(denoiser).__name__,
            )
            continue
        log.info("model %s: %s cache on %s", model_name, cache.type, type(denoiser).__name__)


def _hooked(model: Any, hook: str) -> bool:
    """Whether any module of the model carries the named diffusers hook."""
    return any(
        getattr(module, "_diffusers_hook", None) is not None and module._diffusers_hook.get_hook(hook) is not None
        for module in model.modules()
    )


def _enable_fp8_storage(denoisers: list[Any], on_cuda: bool, model_name: str, device: str) -> None:
    """Weights stored as float8_e4m3fn and upcast per layer to the model's dtype: about half the memory of bf16."""
    import torch

    if not on_cuda:
        _ignored(model_name, "fp8_layerwise", f"on {device}: fp8 weight storage is for CUDA devices")
        return
    for denoiser in denoisers:
        denoiser.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=denoiser.dtype)
    log.info("model %s: fp8 layerwise weight storage", model_name)


def fp8_matmul_unavailable(device: str, capability: tuple[int, int] | None) -> str | None:
    """Why torchao's float8 GEMMs cannot run here (None: they can); `capability` is the CUDA device's, or None."""
    if not device.startswith("cuda") or capability is None:
        return f"on {device}: float8 matrix multiplication needs a CUDA device"
    if capability < FP8_MATMUL_CAPABILITY:
        need = ".".join(map(str, FP8_MATMUL_CAPABILITY))
        have = ".".join(map(str, capability))
        return f"on {device}: float8 GEMMs need compute capability {need} or later (Ada, Hopper), this one has {have}"
    return None


def fp8_matmul_target(module: Any, fqn: str) -> bool:
    """The repeated blocks' linear layers (where the matrix work is; embedders and output layers keep their
    precision) in bfloat16 (per-row float8 scaling needs it: Wan pins some layers to float32) whose both sides are
    multiples of 16 (what torch._scaled_mm accepts)."""
    import torch

    return (
        isinstance(module, torch.nn.Linear)
        and FP8_BLOCK_LAYER.search(fqn) is not None
        and module.weight.dtype == torch.bfloat16
        and module.in_features % FP8_MATMUL_MULTIPLE == 0
        and module.out_features % FP8_MATMUL_MULTIPLE == 0
    )


def fp8_matmul_config() -> Any:
    """torchao's float8 config for `fp8_matmul`: dynamic activations, per-row scales, and set_inductor_config=False:
    torchao's default (True) rewrites Inductor's settings for the whole process (coordinate-descent tuning, which
    lengthens every later compilation, and float32 matmul precision "high"); the worker keeps its own."""
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow

    return Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)


def _enable_fp8_matmul(denoisers: list[Any], device: str, model_name: str) -> None:
    """torchao float8 dynamic quantization of the denoisers' linear layers: per-row float8 weights, activations
    quantized per row at run time, the GEMM itself in float8 on the tensor cores (unlike fp8_layerwise, which only
    stores the weights in float8). Lossy; needs CUDA with compute capability 8.9 or later and the `gpu` extra."""
    import torch

    capability = torch.cuda.get_device_capability(device) if device.startswith("cuda") else None
    reason = fp8_matmul_unavailable(device, capability)
    if reason is not None:
        _ignored(model_name, "fp8_matmul", reason)
        return
    try:
        from torchao.quantization import quantize_

        config = fp8_matmul_config()
    except ImportError as exc:
        _ignored(model_name, "fp8_matmul", f"because torchao cannot be imported ({exc}): install the gpu extra")
        return
    layers = [(name, module) for denoiser in denoisers for name, module in denoiser.named_modules()]
    targets = sum(fp8_matmul_target(module, name) for name, module in layers)
    if not targets:
        dtypes = sorted({str(denoiser.dtype).removeprefix("torch.") for denoiser in denoisers})
        _ignored(model_name, "fp8_matmul", f"because per-row float8 needs bfloat16 block layers; the model is {dtypes}")
        return
    for denoiser in denoisers:
        quantize_(denoiser, config, filter_fn=fp8_matmul_target)
    log.info(
        "model %s: torchao float8 GEMMs in %d block layers (dynamic activations, per-row scales)", model_name, targets
    )


def _enable_vae(pipe: Any, feature: str, model_name: str) -> None:
    """VAE tiling (decode in overlapping tiles: bounds memory at large sizes) or slicing (decode a batch one video
    at a time); both work on every device."""
    vae = pipe.components.get("vae")
    method = getattr(vae, f"enable_{feature}", None)
    if method is None:
        _ignored(model_name, f"vae_{feature}", f"because {type(vae).__name__} has no {feature}")
        return
    method()
    log.info("model %s: VAE %s", model_name, feature)


def _compile_repeated_blocks(denoisers: list[Any], speed: SpeedSettings, device: str, model_name: str) -> None:
    """torch.compile of each repeated transformer block (regional compilation: short compile, full speed-up).

    Nothing compiles here: each block compiles on its first call, for the shapes it sees (warm-up: worker.warmup).
    """
    if not speed.compiles_on(device):
        _ignored(model_name, "compile", f"on {device}: torch.compile is used on CUDA devices only (or compile_cpu)")
        return
    for denoiser in denoisers:
        if not getattr(denoiser, "_repeated_blocks", None):
            _ignored(model_name, "compile", f"because {type(denoiser).__name__} declares no repeated blocks")
            continue
        denoiser.compile_repeated_blocks(backend=speed.compile_backend)
        log.info(
            "model %s: compiling %s blocks (%s) on first use",
            model_name,
            type(denoiser).__name__,
            speed.compile_backend,
        )
