"""The model runner: the device work of a job, or of compatible jobs as one batch.

It brings the job's model onto the device (a disk load, a swap back from CPU memory, or nothing: models.pool),
activates its LoRAs (models.loras), and runs the pipeline call of each job with the conditioning cache and stage
hooks (pipelines.runner); the members of a batch share their denoiser calls (pipelines.batching). Each job gets its
frames, or the exception that stopped it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from models.catalog import Catalog
from models.pool import LoadedModel, ModelPool
from npc_video_client.clock import Stopwatch
from npc_video_client.errors import JobCancelled
from pipelines.batching import run_batch
from pipelines.conditioning import SEEDED_CONDITION_FAMILIES, ConditionCache, Conditioning
from pipelines.runner import run_pipeline
from worker.job import Frames, JobHooks, Outcome, PreparedJob
from worker.preparation import check_deadline
from worker.settings import Settings

BatchKey = Hashable


class ModelRunner:
    def __init__(self, settings: Settings, catalog: Catalog, pool: ModelPool) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        cache_bytes = settings.condition_cache_size(pool.device)
        self.conditions = ConditionCache(cache_bytes) if cache_bytes > 0 else None

    def batch_key(self, prepared: PreparedJob) -> BatchKey | None:
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

    def generate(self, prepared: PreparedJob, hooks: JobHooks) -> Frames:
        """The device work of one job."""
        (outcome,) = self.generate_batch([(prepared, hooks)])
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def generate_batch(self, jobs: Sequence[tuple[PreparedJob, JobHooks]]) -> list[Outcome]:
        """The device work of compatible jobs (the same `batch_key`) at once; each job's frames, or the exception
        that ended it. Raises when the model or its LoRAs cannot be made ready (the same for every member)."""
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
        outcomes: list[Outcome] = run_batch(loaded.pipe, calls)
        generate_ms = phase.ms()
        ended_at = time.time() * 1000
        for prepared, _hooks in jobs:
            prepared.timings.generate_ms = generate_ms
            prepared.timings.generate_started_at = round(started_at, 3)
            prepared.timings.generate_ended_at = round(ended_at, 3)
        return outcomes

    def _pipeline_call(self, loaded: LoadedModel, prepared: PreparedJob, hooks: JobHooks) -> Callable[[Any], Frames]:
        def on_step(step: int, total: int) -> None:
            if hooks.cancel_requested():
                raise JobCancelled(prepared.job_id)
            hooks.progress(step, total)

        request = prepared.request
        frame_key: tuple[Any, ...] = (prepared.image_sha256, request.width, request.height)
        if request.family in SEEDED_CONDITION_FAMILIES:
            frame_key = (*frame_key, request.seed)
        scope = Conditioning(self.conditions, loaded.name, frame_key)

        def call(pipe: Any) -> Frames:
            check_deadline(prepared.envelope)
            try:
                return run_pipeline(
                    pipe, loaded.family, request, prepared.image, on_step, recorder=prepared.stages, scope=scope
                )
            finally:
                prepared.timings.condition_ms = round(scope.seconds * 1000, 1)

        return call

    def warm_up(self) -> list[str]:
        """Compile the models with `compile` on for their presets' shapes before the first job (worker.warmup);
        the service calls it at start, before /readyz turns ready. One line per warmed shape."""
        from worker.warmup import warm_up

        return warm_up(self.catalog, self.pool, self.settings)
