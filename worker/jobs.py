"""The lifecycle of one job: envelope -> params -> resolved request -> frames -> MP4 -> stored object -> result.

It runs in three phases so the queue worker can overlap them: `prepare` (validate, resolve, cache check),
`generate` (the device work) and `finish` (encode, upload: CPU and network only). `run` chains all three
for in-process use and converts any failure into a result at one place (worker.failures).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.catalog import Catalog
from models.pool import LoadedModel, ModelPool
from models.resolution import resolve
from npc_video_client.clock import Stopwatch, now_ms
from npc_video_client.contract import (
    CONTRACT_VERSION,
    AppliedLora,
    ErrorCode,
    JobEnvelope,
    JobResult,
    JobStatus,
    QualityPreset,
    Timings,
)
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from pipelines.batching import run_batch
from pipelines.conditioning import SEEDED_CONDITION_FAMILIES, ConditionCache, Conditioning
from pipelines.request import ResolvedRequest
from pipelines.runner import run_pipeline
from pipelines.stages import StageRecorder
from worker.encode import MP4_CONTENT_TYPE, THUMBNAIL_CONTENT_TYPE, encode_video, write_thumbnail
from worker.failures import as_job_error, failure_result
from worker.images import fit_image, load_base_image
from worker.keys import thumbnail_key, thumbnail_key_of, video_key
from worker.payload import read_job
from worker.settings import Settings
from worker.storage import Storage

log = logging.getLogger(__name__)
UNKNOWN_JOB_ID = "unknown"


class JobHooks(Protocol):
    """What the caller learns while a job runs, and how it can stop one."""

    def processing(self, model: str, preset: QualityPreset) -> None: ...

    def progress(self, step: int, total_steps: int) -> None: ...

    def cancel_requested(self) -> bool: ...


class SilentHooks:
    def processing(self, model: str, preset: QualityPreset) -> None:
        return None

    def progress(self, step: int, total_steps: int) -> None:
        return None

    def cancel_requested(self) -> bool:
        return False


@dataclass
class PreparedJob:
    envelope: JobEnvelope
    request: ResolvedRequest
    fingerprint: str
    video_key: str
    thumbnail_key: str
    clock: Stopwatch
    timings: Timings
    image: Any = None
    stages: StageRecorder | None = None  # set before generate to record the pipeline's stages (npc-worker bench)
    batch_size: int = 1  # how many jobs ran through the denoiser with this one
    image_sha256: str = ""  # the base image's bytes: keys its encoded start frame in the conditioning cache

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


class JobRunner:
    def __init__(self, settings: Settings, catalog: Catalog, pool: ModelPool, storage: Storage) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.storage = storage
        cache_bytes = settings.condition_cache_size(pool.device)
        self.conditions = ConditionCache(cache_bytes) if cache_bytes > 0 else None

    # -- the three phases -------------------------------------------------------------------------------
    def prepare(self, envelope: JobEnvelope, hooks: JobHooks) -> PreparedJob:
        clock = Stopwatch()
        # int arithmetic first: a submitted_at far in the future is a producer's clock error, not an overflow
        queue_ms = float(max(0, now_ms() - envelope.submitted_at)) if envelope.submitted_at else None
        self.check_deadline(envelope)
        if hooks.cancel_requested():
            raise JobCancelled(envelope.job_id)
        params = envelope.params
        source, trusted = self._image_source(params.npc_id, params.npc_base_image)
        base = load_base_image(source, self.settings, trusted=trusted)
        request = resolve(params, self.catalog, base.size)
        fingerprint = request.fingerprint(self.pool.identity(request.model), base.sha256)
        prepared = PreparedJob(
            envelope=envelope,
            request=request,
            fingerprint=fingerprint,
            video_key=video_key(params.npc_id, fingerprint),
            thumbnail_key=thumbnail_key(params.npc_id, fingerprint),
            clock=clock,
            timings=Timings(queue_ms=queue_ms),
        )
        prepared.image = fit_image(base.image, request.width, request.height)
        prepared.image_sha256 = base.sha256
        return prepared

    def batch_key(self, prepared: PreparedJob) -> Hashable | None:
        """What jobs must share to run through the denoiser together (model, size, generated frames and rate,
        steps, cfg, LoRAs with weights); None for a model that must run jobs alone: cache hooks and CPU offload
        keep per-call state on the shared modules."""
        request = prepared.request
        entry = self.catalog.models[request.model]
        if entry.speed.cache is not None or entry.offload != "none":
            return None
        loras = tuple((lora.name, lora.weight, lora.digest) for lora in request.loras)
        return (
            request.model,
            request.width,
            request.height,
            request.generated_frames,
            request.generated_fps,
            request.steps,
            request.cfg,
            loras,
        )

    def is_cached(self, prepared: PreparedJob) -> bool:
        return self.storage.exists(prepared.video_key) and self.storage.exists(prepared.thumbnail_key)

    def generate(self, prepared: PreparedJob, hooks: JobHooks) -> np.ndarray:
        """The device work of one job: load or swap its model, set its LoRAs, run the pipeline."""
        (outcome,) = self.generate_batch([(prepared, hooks)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def generate_batch(self, jobs: Sequence[tuple[PreparedJob, JobHooks]]) -> list[np.ndarray | BaseException]:
        """The device work of compatible jobs (same model, size, frames, steps, cfg, LoRAs: `batch_key`) at once,
        their denoiser calls merged (pipelines.batching); each job's frames, or the exception that ended it."""
        request = jobs[0][0].request
        acquired = self.pool.acquire(request.model)
        loaded = acquired.model
        loaded.adapters.activate(request.loras)
        calls = []
        for index, (prepared, hooks) in enumerate(jobs):
            prepared.timings.load_ms = acquired.load_ms if index == 0 else 0.0
            prepared.timings.swap_ms = acquired.swap_ms if index == 0 else 0.0
            prepared.timings.prepare_ms = prepared.clock.ms()
            prepared.batch_size = len(jobs)
            calls.append(self._pipeline_call(loaded, prepared, hooks))
        phase = Stopwatch()
        started_at = time.time() * 1000
        outcomes = run_batch(loaded.pipe, calls)
        generate_ms = phase.ms()
        ended_at = time.time() * 1000
        for prepared, _hooks in jobs:
            prepared.timings.generate_ms = generate_ms
            prepared.timings.generate_started_at = round(started_at, 3)
            prepared.timings.generate_ended_at = round(ended_at, 3)
        return outcomes

    def _pipeline_call(self, loaded: LoadedModel, prepared: PreparedJob, hooks: JobHooks) -> Callable[[Any], Any]:
        def on_step(step: int, total: int) -> None:
            if hooks.cancel_requested():
                raise JobCancelled(prepared.job_id)
            hooks.progress(step, total)

        request = prepared.request
        frame_key: tuple[Any, ...] = (prepared.image_sha256, request.width, request.height)
        if request.family in SEEDED_CONDITION_FAMILIES:
            frame_key = (*frame_key, request.seed)
        scope = Conditioning(self.conditions, loaded.name, frame_key)

        def call(pipe: Any) -> np.ndarray:
            self.check_deadline(prepared.envelope)  # cancellation: checked at pickup and after every step
            try:
                return run_pipeline(
                    pipe, loaded.family, request, prepared.image, on_step, recorder=prepared.stages, scope=scope
                )
            finally:
                prepared.timings.condition_ms = round(scope.seconds * 1000, 1)

        return call

    def finish(self, prepared: PreparedJob, frames: np.ndarray | None) -> JobResult:
        """Encode and store (skipped on a cache hit: `frames` is None), then build the completed result."""
        if frames is not None:
            with tempfile.TemporaryDirectory(prefix="npc-encode-") as scratch:
                video_path, poster_path = Path(scratch) / "video.mp4", Path(scratch) / "poster.jpg"
                phase = Stopwatch()
                encode_video(frames, prepared.request.timing, video_path)
                write_thumbnail(frames[0], poster_path)
                prepared.timings.encode_ms = phase.ms()
                phase = Stopwatch()
                self.storage.put(prepared.thumbnail_key, poster_path, THUMBNAIL_CONTENT_TYPE)
                self.storage.put(prepared.video_key, video_path, MP4_CONTENT_TYPE)
                prepared.timings.upload_ms = phase.ms()
        elif not prepared.timings.prepare_ms:
            prepared.timings.prepare_ms = prepared.clock.ms()
        prepared.timings.total_ms = prepared.clock.ms()
        result = request_summary(prepared.job_id, prepared.request, prepared.envelope.metadata).model_copy(
            update={
                "status": JobStatus.COMPLETED,
                "url": self.storage.url(prepared.video_key),
                "thumbnail_url": self.storage.url(prepared.thumbnail_key),
                "storage_key": prepared.video_key,
                "content_type": MP4_CONTENT_TYPE,
                "timings": prepared.timings,
                "gpu_seconds": round(prepared.timings.generate_ms / 1000, 3),
                "cache_hit": frames is None,
                "batch_size": None if frames is None else prepared.batch_size,
            }
        )
        return result

    def warm_up(self) -> list[str]:
        """Compile the models with `compile` on for their presets' shapes before the first job (worker.warmup);
        the service calls it at start, before /readyz turns ready. One line per warmed shape."""
        from worker.warmup import warm_up

        return warm_up(self.catalog, self.pool, self.settings)

    # -- in-process: all phases, failures converted here -------------------------------------------------
    def run(self, payload: Any, hooks: JobHooks | None = None) -> JobResult:
        hooks = hooks or SilentHooks()
        read = read_job(payload, UNKNOWN_JOB_ID, self.settings.max_job_bytes)
        job_id = read.job_id
        prepared: PreparedJob | None = None
        try:
            if read.error is not None or read.envelope is None:
                raise read.error or JobError(ErrorCode.INVALID_PARAMS, "job cannot be read")
            prepared = self.prepare(read.envelope, hooks)
            hooks.processing(prepared.request.model, prepared.request.preset)
            frames = None if self.is_cached(prepared) else self.generate(prepared, hooks)
            return self.finish(prepared, frames)
        except Exception as exc:  # the failure boundary: every error becomes a result
            partial = request_summary(job_id, prepared.request) if prepared else None
            return failure_result(job_id, as_job_error(exc), partial, read.metadata)

    def refresh_urls(self, result: JobResult) -> JobResult:
        """A stored completed result with URLs made now (presigned URLs expire; the stored ones may have)."""
        if result.status != JobStatus.COMPLETED or result.storage_key is None:
            return result
        thumbnail = thumbnail_key_of(result.storage_key)
        return result.model_copy(
            update={"url": self.storage.url(result.storage_key), "thumbnail_url": self.storage.url(thumbnail)}
        )

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def check_deadline(envelope: JobEnvelope) -> None:
        if envelope.deadline is not None and now_ms() > envelope.deadline:
            raise DeadlineExceeded(envelope.deadline)

    def _image_source(self, npc_id: str, from_job: str | None) -> tuple[str, bool]:
        """The job's image (untrusted) or the catalog's image for this NPC (the operator's, trusted)."""
        if from_job is not None:
            return from_job, False
        npc = self.catalog.npcs.get(npc_id)
        if npc is None:
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"params.npc_base_image is missing and the catalog has no [npcs.{npc_id}] base_image",
            )
        return npc.base_image, True
