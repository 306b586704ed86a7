"""The lifecycle of one job: envelope -> params -> resolved request -> frames -> MP4 -> stored object -> result.

It runs in three phases so the queue worker can overlap them: `prepare` (validate, resolve, cache check),
`generate` (the device work) and `finish` (encode, upload: CPU and network only). `run` chains all three
for in-process use and converts any failure into a result at one place (worker.failures).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.catalog import Catalog
from models.pool import ModelPool
from models.resolution import resolve
from npc_video_client.clock import Stopwatch, now_ms
from npc_video_client.contract import (
    AppliedLora,
    ErrorCode,
    JobEnvelope,
    JobResult,
    JobStatus,
    QualityPreset,
    Timings,
)
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from pipelines.request import ResolvedRequest
from pipelines.runner import run_pipeline
from pipelines.stages import StageRecorder
from worker.encode import MP4_CONTENT_TYPE, THUMBNAIL_CONTENT_TYPE, encode_mp4, write_thumbnail
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

    @property
    def job_id(self) -> str:
        return self.envelope.job_id


def request_summary(job_id: str, request: ResolvedRequest) -> JobResult:
    """The resolved fields of a result, before anything is stored (also kept on failures)."""
    return JobResult(
        job_id=job_id,
        status=JobStatus.FAILED,
        width=request.width,
        height=request.height,
        fps=request.fps,
        num_frames=request.num_frames,
        duration_sec=request.duration_sec,
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

    # -- the three phases -------------------------------------------------------------------------------
    def prepare(self, envelope: JobEnvelope, hooks: JobHooks) -> PreparedJob:
        clock = Stopwatch()
        queue_ms = max(0.0, float(now_ms() - envelope.submitted_at)) if envelope.submitted_at else None
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
        hooks.processing(request.model, request.preset)
        return prepared

    def is_cached(self, prepared: PreparedJob) -> bool:
        return self.storage.exists(prepared.video_key) and self.storage.exists(prepared.thumbnail_key)

    def generate(self, prepared: PreparedJob, hooks: JobHooks) -> np.ndarray:
        request = prepared.request
        acquired = self.pool.acquire(request.model)
        prepared.timings.load_ms, prepared.timings.swap_ms = acquired.load_ms, acquired.swap_ms
        loaded = acquired.model
        loaded.adapters.activate(request.loras)
        self.check_deadline(prepared.envelope)
        prepared.timings.prepare_ms = prepared.clock.ms()

        def on_step(step: int, total: int) -> None:
            if hooks.cancel_requested():
                raise JobCancelled(prepared.job_id)
            hooks.progress(step, total)

        phase = Stopwatch()
        frames = run_pipeline(loaded.pipe, loaded.family, request, prepared.image, on_step, recorder=prepared.stages)
        prepared.timings.generate_ms = phase.ms()
        return frames

    def finish(self, prepared: PreparedJob, frames: np.ndarray | None) -> JobResult:
        """Encode and store (skipped on a cache hit: `frames` is None), then build the completed result."""
        if frames is not None:
            with tempfile.TemporaryDirectory(prefix="npc-encode-") as scratch:
                video_path, poster_path = Path(scratch) / "video.mp4", Path(scratch) / "poster.jpg"
                phase = Stopwatch()
                encode_mp4(frames, prepared.request.fps, video_path)
                write_thumbnail(frames[0], poster_path)
                prepared.timings.encode_ms = phase.ms()
                phase = Stopwatch()
                self.storage.put(prepared.thumbnail_key, poster_path, THUMBNAIL_CONTENT_TYPE)
                self.storage.put(prepared.video_key, video_path, MP4_CONTENT_TYPE)
                prepared.timings.upload_ms = phase.ms()
        elif not prepared.timings.prepare_ms:
            prepared.timings.prepare_ms = prepared.clock.ms()
        prepared.timings.total_ms = prepared.clock.ms()
        result = request_summary(prepared.job_id, prepared.request).model_copy(
            update={
                "status": JobStatus.COMPLETED,
                "url": self.storage.url(prepared.video_key),
                "thumbnail_url": self.storage.url(prepared.thumbnail_key),
                "storage_key": prepared.video_key,
                "content_type": MP4_CONTENT_TYPE,
                "timings": prepared.timings,
                "gpu_seconds": round(prepared.timings.generate_ms / 1000, 3),
                "cache_hit": frames is None,
            }
        )
        return result

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
            frames = None if self.is_cached(prepared) else self.generate(prepared, hooks)
            return self.finish(prepared, frames)
        except Exception as exc:  # the failure boundary: every error becomes a result
            partial = request_summary(job_id, prepared.request) if prepared else None
            return failure_result(job_id, as_job_error(exc), partial)

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
