"""A job as the stages pass it on: prepared at intake, generated on the device, finished into a result.

Data flows one way: envelope -> validated params -> resolved request (`PreparedJob`) -> frames -> MP4 -> stored
object -> `JobResult`. These are the types the stages hand each other; each stage's module says what it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL.Image import Image

from npc_video_client.clock import Stopwatch
from npc_video_client.contract import CONTRACT_VERSION, AppliedLora, JobEnvelope, JobResult, JobStatus, Timings
from pipelines.request import ResolvedRequest
from pipelines.stages import StageRecorder

Frames = np.ndarray  # uint8 (F, H, W, 3), what a pipeline call returns (pipelines.runner)
Outcome = Frames | BaseException  # one job's part of a batch on the device: its frames, or what stopped it


class JobHooks(Protocol):
    """What a running job tells its caller at every denoising step, and how the caller stops it."""

    def progress(self, step: int, total_steps: int) -> None: ...

    def cancel_requested(self) -> bool: ...


class SilentHooks:
    """In-process runs with nobody listening (CLI `generate`, the bench, tests)."""

    def progress(self, step: int, total_steps: int) -> None:
        return None

    def cancel_requested(self) -> bool:
        return False


@dataclass
class PreparedJob:
    """A job ready for the device: its request resolved, its start frame fitted, its storage keys known."""

    envelope: JobEnvelope
    request: ResolvedRequest
    fingerprint: str
    video_key: str
    thumbnail_key: str
    clock: Stopwatch
    timings: Timings
    image: Image
    image_sha256: str  # the base image's bytes: keys its encoded start frame in the conditioning cache
    stages: StageRecorder | None = None  # set before generate to record the pipeline's stages (the bench)
    batch_size: int = 1  # how many jobs ran through the denoiser with this one

    @property
    def job_id(self) -> str:
        return self.envelope.job_id


def request_summary(job_id: str, request: ResolvedRequest, metadata: dict[str, Any] | None = None) -> JobResult:
    """The resolved fields of a result, before anything is stored (also kept on failures)."""
    return JobResult(
        job_id=job_id,
        status=JobStatus.FAILED,
        contract_version=CONTRACT_VERSION,
        metadata=metadata,
        width=request.width,
        height=request.height,
        fps=request.fps,
        num_frames=request.num_frames,
        duration_sec=request.duration_sec,
        generated_frames=request.generated_frames,
        generated_fps=request.generated_fps,
        seed=request.seed,
        model=request.model,
        preset=request.preset,
        loras=[AppliedLora(name=lora.name, weight=lora.weight) for lora in request.loras],
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        steps=request.steps,
        cfg=request.cfg,
    )
