"""The model runner: the device work of a job, or of compatible jobs as one batch.

It brings the job's model onto the device (a disk load, a swap back from CPU memory, or nothing: models.pool),
activates its LoRAs (models.loras), and runs the pipeline call of each job with the conditioning cache and stage
hooks (pipelines.runner); the members of a batch share their denoiser calls (pipelines.batching). Each job gets its
frames, or the exception that stopped it.

In a worker group (worker.group) the leader's runner runs each call in lockstep with the followers: it sends them
the call before loading the model, its decision at every step, and meets them after the call; a follower's runner
runs its part of the same call (`follow`), without decoding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from models.catalog import Catalog
from models.pool import LoadedModel, ModelPool
from npc_video_client.clock import Stopwatch
from npc_video_client.errors import JobCancelled
from pipelines.batching import run_batch
from pipelines.conditioning import SEEDED_CONDITION_FAMILIES, ConditionCache, Conditioning
from pipelines.preview import PreviewMap, fit_preview_map
from pipelines.runner import PreviewSink, run_pipeline
from worker.group.lockstep import Channel, FollowerCall, FollowerStop
from worker.job import Frames, JobHooks, Outcome, PreparedJob
from worker.preparation import check_deadline
from worker.settings import Settings

log = logging.getLogger(__name__)
BatchKey = Hashable


@dataclass(frozen=True)
class _PreviewTo:
    """A job's hooks as the pipeline call's preview sink, telling them the preview's frame rate."""

    hooks: JobHooks
    duration_s: float  # of the generated clip: the preview's frames span it

    def preview_due(self, step: int, total: int) -> bool:
        return self.hooks.preview_due(step, total)

    def preview(self, step: int, total: int, frames: Frames) -> None:
        self.hooks.preview(step, total, frames, fps=round(frames.shape[0] / self.duration_s, 3))


class ModelRunner:
    def __init__(self, settings: Settings, catalog: Catalog, pool: ModelPool, group: Channel | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.group = group  # this process's part of a worker group, if it is in one
        cache_bytes = settings.condition_cache_size(pool.device)
        self.conditions = ConditionCache(cache_bytes) if cache_bytes > 0 else None
        self._preview_maps: dict[str, PreviewMap] = {}

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
        if self.group is not None:  # the leader: the followers start the same call, and load the model meanwhile
            (prepared, _hooks) = jobs[0]
            check_deadline(prepared.envelope)  # here, not in the call: the followers would be waiting in it
            self.group.send(FollowerCall(request.model, request, prepared.image, prepared.image_sha256))
        try:
            acquired = self.pool.acquire(request.model)
            loaded = acquired.model
            loaded.adapters.activate(request.loras)
        except BaseException:
            if self.group is not None:
                self.group.resync()
            raise
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
        group = self.group
        preview = self._previews(loaded, prepared, hooks) if prepared.envelope.preview else None

        def on_step(step: int, total: int) -> None:
            try:
                if hooks.cancel_requested():
                    raise JobCancelled(prepared.job_id)
                hooks.progress(step, total)
            except BaseException:
                if group is not None:
                    group.decide(stop=True)
                raise
            if group is not None:
                group.decide(stop=False)

        def between_decode_chunks() -> None:  # a cancel, or a warm run's preemption, also while the video decodes
            if hooks.cancel_requested():
                raise JobCancelled(prepared.job_id)

        request = prepared.request
        scope = self._conditioning(loaded, request, prepared.image_sha256)

        def call(pipe: Any) -> Frames:
            if group is None:
                check_deadline(prepared.envelope)
            try:
                frames = run_pipeline(
                    pipe,
                    loaded.family,
                    request,
                    prepared.image,
                    on_step,
                    recorder=prepared.stages,
                    scope=scope,
                    preview=preview,
                    # a group's members stop together only at steps (the leader alone decodes)
                    between_decode_chunks=between_decode_chunks if group is None else None,
                )
            except BaseException:
                if group is not None:
                    group.resync()
                raise
            finally:
                prepared.timings.condition_ms = round(scope.seconds * 1000, 1)
            if group is not None:
                group.resync()
            return frames

        return call

    def _previews(self, loaded: LoadedModel, prepared: PreparedJob, hooks: JobHooks) -> tuple[PreviewMap, PreviewSink]:
        """The model's latent-to-RGB map (fitted against its VAE the first time a job of it asks for previews) and
        where the job's previews go."""
        preview_map = self._preview_maps.get(loaded.name)
        if preview_map is None:
            preview_map = self._preview_maps[loaded.name] = fit_preview_map(loaded.pipe, loaded.family.name)
            log.info("model %s: latent preview map fitted against its VAE", loaded.name)
        request = prepared.request
        return preview_map, _PreviewTo(hooks, request.generated_frames / request.generated_fps)

    def _conditioning(self, loaded: LoadedModel, request: Any, image_sha256: str) -> Conditioning:
        """The conditioning cache's scope of one call: its encoded start frame is keyed by the image's bytes and size
        (and the seed, for families whose encoding draws noise)."""
        frame_key: tuple[Any, ...] = (image_sha256, request.width, request.height)
        if request.family in SEEDED_CONDITION_FAMILIES:
            frame_key = (*frame_key, request.seed)
        return Conditioning(self.conditions, loaded.name, frame_key)

    def follow(self, call: FollowerCall) -> None:
        """A follower's part of the leader's call: the same model, LoRAs and pipeline call, ended at the step the
        leader ends it, stopped at the latents. A failure of the call is the job's (the leader meets it too and
        reports it); only a broken group (worker.group.lockstep.GroupFailure) leaves this."""
        assert self.group is not None, "follow() runs in a worker group's follower"
        group = self.group
        try:
            loaded = self.pool.acquire(call.model).model
            loaded.adapters.activate(call.request.loras)
        except Exception as exc:  # the leader's load fails alike, and its job reports why
            log.warning("could not load %s for the leader's call (%s)", call.model, exc)
            group.resync()
            return

        def on_step(_step: int, _total: int) -> None:
            if group.decide(stop=False):
                raise FollowerStop

        scope = self._conditioning(loaded, call.request, call.image_sha256)
        try:
            run_pipeline(loaded.pipe, loaded.family, call.request, call.image, on_step, scope=scope, decode=False)
        except FollowerStop:
            pass
        except Exception as exc:  # the same call fails on the leader, which reports the job
            log.warning("the call failed here as on the leader (%s: %s)", type(exc).__name__, exc)
        group.resync()

    def warm_up(self) -> list[str]:
        """Compile the models with `compile` on for their presets' shapes before the first job (worker.warmup);
        the service calls it at start, before /readyz turns ready. One line per warmed shape."""
        from worker.warmup import warm_up

        return warm_up(self.catalog, self.pool, self.settings)
