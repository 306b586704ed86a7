"""Splitting one model's denoiser over a worker group: diffusers' context parallelism (Ulysses all-to-all, ring
attention, or both), applied to every rank's copy of the model when it loads.

One job's sequence of video tokens is cut into `size` parts; attention exchanges them (Ulysses: heads all-to-all;
ring: key/value blocks passed round). Everything else runs whole on every rank, so each rank holds the whole model
and computes the same latents; the output is gathered after the last block. The catalog says how per model:
`parallel = "ulysses"` (the default), `"ring"`, or `"ring:R"` (ring over R ranks, Ulysses over the rest).

What cannot be split is refused at start, with one line naming why (`ParallelRefused`): a family whose denoiser has
no context-parallel plan in diffusers (CogVideoX, SVD), CPU offload (the hooks move weights per call), cache hooks,
compilation (not supported in groups yet), a Ulysses degree that does not divide the attention heads, ring attention
where the attention backend returns no log-sum-exp (every backend on the CPU; on CUDA name one in
`speed.attention_backend`). A job whose token count the group cannot divide is refused with invalid_params
(`check_divisible`).

diffusers sizes its device mesh from `torch.accelerator.device_count()`, which is 0 on the CPU; there the mesh is
built here and the count is taken as 1 (each CPU rank has one "device") while the model is set up.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from pipelines.family import Family

if TYPE_CHECKING:
    from models.catalog import Catalog, ModelEntry

DENOISERS = ("transformer", "transformer_2")
# Attention backends whose context-parallel ring path gets the log-sum-exp it needs (diffusers attention_dispatch).
RING_BACKENDS = frozenset({"flash", "flash_hub", "_flash_3", "_flash_3_hub", "_native_cudnn", "sage", "sage_hub"})


class ParallelRefused(ValueError):
    """A model or setting that a worker group cannot split; the message names the model and the reason."""


@dataclass(frozen=True)
class ParallelPlan:
    """How a group of `size` ranks splits a model: ring degree x Ulysses degree = size."""

    size: int
    ring: int = 1

    @property
    def ulysses(self) -> int:
        return self.size // self.ring

    @classmethod
    def parse(cls, text: str, size: int) -> ParallelPlan:
        """`ulysses`, `ring` or `ring:R` for a group of `size` (ValueError naming the problem)."""
        if text == "ulysses":
            return cls(size)
        if text == "ring":
            return cls(size, ring=size)
        kind, _, degree = text.partition(":")
        if kind != "ring" or not degree.isdigit() or int(degree) < 1 or size % int(degree):
            raise ValueError(
                f"parallel = {text!r}: write 'ulysses', 'ring' or 'ring:R' with R dividing the group size {size}"
            )
        return cls(size, ring=int(degree))


def refusal(name: str, entry: ModelEntry, family: Family, size: int, device: str) -> str | None:
    """Why model `name` cannot run split over a group of `size` on `device`, or None when it can (before loading:
    catalog facts only; the heads are checked on the loaded model by `apply`)."""
    if not family.context_parallel:
        return f"model {name!r}: the {family.name} denoiser has no context-parallel plan in diffusers"
    if entry.offload != "none":
        return f"model {name!r}: offload = {entry.offload!r} moves weights per call; a group needs them in place"
    if entry.speed.cache is not None:
        return f"model {name!r}: speed.cache hooks keep per-call state that the ranks would not share"
    if entry.speed.compile:
        return f"model {name!r}: speed.compile is not supported in worker groups yet"
    try:
        plan = ParallelPlan.parse(entry.parallel, size)
    except ValueError as exc:
        return f"model {name!r}: {exc}"
    backend = entry.speed.attention_backend
    if plan.ring > 1 and (not device.startswith("cuda") or backend not in RING_BACKENDS):
        where = "the CPU" if not device.startswith("cuda") else f"attention backend {backend or 'native'!r}"
        return (
            f"model {name!r}: ring attention needs a backend that returns the log-sum-exp, which {where} does not "
            f"(set speed.attention_backend to one of {', '.join(sorted(RING_BACKENDS))} on CUDA, or parallel = "
            "'ulysses')"
        )
    return None


def check_splittable(catalog: Catalog, size: int, device: str) -> None:
    """At the start of a worker group's member: every catalog model can be split over `size` ranks, else
    ParallelRefused naming the first that cannot (and how many cannot)."""
    from pipelines.families import FAMILIES

    reasons = [
        reason
        for name, entry in catalog.models.items()
        if (reason := refusal(name, entry, FAMILIES[entry.family], size, device)) is not None
    ]
    if reasons:
        more = f" (and {len(reasons) - 1} more model(s))" if len(reasons) > 1 else ""
        raise ParallelRefused(
            f"a worker group of {size} cannot split {reasons[0]}{more}; give group workers a catalog of models it "
            "can split (Wan, LTX-Video), and keep the others on single-device workers"
        )


def check_divisible(family: Family, width: int, height: int, frames: int, size: int) -> None:
    """A job's video tokens are split over the group: their count must divide by the group size (one token per
    `size_multiple` px square per latent frame: the VAE's compression times the denoiser's patch)."""
    tokens_per_frame = (width // family.size_multiple) * (height // family.size_multiple)
    latent_frames = (frames - family.frame_rule.offset) // family.frame_rule.step + 1
    tokens = tokens_per_frame * latent_frames
    if tokens % size == 0:
        return
    raise JobError(
        ErrorCode.INVALID_PARAMS,
        f"this worker group splits a video's tokens over {size} devices, and this request has {tokens} "
        f"({latent_frames} latent frames x {tokens_per_frame} per frame, one per {family.size_multiple} px square): "
        f"choose a width and height whose {family.size_multiple}-px cells number a multiple of {size} "
        f"(e.g. a width that is a multiple of {family.size_multiple * size} px)",
    )


def apply(pipe: Any, plan: ParallelPlan, name: str, device: str) -> None:
    """Split every denoiser of a loaded pipeline (torch.distributed must be initialised: worker.group)."""
    import torch
    from diffusers import ContextParallelConfig

    for component in DENOISERS:
        denoiser = getattr(pipe, component, None)
        if denoiser is None:
            continue
        heads = int(getattr(denoiser.config, "num_attention_heads", 0) or 0)
        if heads % plan.ulysses:
            raise ParallelRefused(
                f"model {name!r}: {heads} attention heads do not divide over a Ulysses degree of {plan.ulysses}; "
                "choose a group size that divides them, or parallel = 'ring'"
            )
        mesh = torch.distributed.device_mesh.init_device_mesh(
            "cuda" if device.startswith("cuda") else "cpu",
            (plan.ring, plan.ulysses),
            mesh_dim_names=("ring", "ulysses"),
        )
        config = ContextParallelConfig(ring_degree=plan.ring, ulysses_degree=plan.ulysses, mesh=mesh)
        with _one_device_per_cpu_rank(device):
            denoiser.enable_parallelism(config=config)


@contextmanager
def _one_device_per_cpu_rank(device: str) -> Iterator[None]:
    """diffusers divides by torch.accelerator.device_count(), which is 0 on the CPU: count 1 there meanwhile."""
    import torch

    if device.startswith("cuda"):
        yield
        return
    original = torch.accelerator.device_count
    torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original
