"""Runs in this process: through the worker's stages (the default), or the bare diffusers call (`stock`).

A group is one (model, setting) of the matrix: one runner built as the worker builds it, on the derived catalog,
with its own scratch storage (so no run can be a cache hit of another setting's output).

Before the runner's `generate` (whose first act is the same), the bench brings the job's model onto the device
through the pool itself, so the `load` stage is the wall time of that read from disk or swap back from CPU memory
(the first load includes importing the pipeline's library code, which the worker's `Timings.load_ms` leaves out;
0 when the model was on the device already), and it times the
model's LoRA activation (`lora`: a read from the file the first time, a switch between loaded adapters after) by
wrapping that model's `adapters.activate` once: the runner's own call is the one timed, nothing runs twice.
`swap_with` (`--swap-with`) brings another model onto the device before each run, outside the run's clock: with a
device memory budget that holds one of the two, every run's model then comes back from CPU memory.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from bench.flops import Config, configs_of_pipeline
from bench.machine import is_cuda, peak_memory_bytes, reset_peak_memory, rss_bytes, synchronize
from bench.records import RunRecord
from bench.worker_api import Settings, SilentHooks, encode_video, new_runner, write_thumbnail
from npc_video_client.contract import JobEnvelope
from pipelines.request import ResolvedRequest
from pipelines.runner import frames_to_uint8
from pipelines.stages import StageRecorder


class BenchError(RuntimeError):
    """A run that cannot be measured (a failed job, a cache hit, a worker that would not start): exit status 1."""


def file_of(url: str | None) -> Path | None:
    """The local path of a file:// URL (the bench's storage is always a local folder)."""
    if url is None:
        return None
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _shape_of(request: ResolvedRequest) -> dict[str, Any]:
    """What a run record says of the request it ran."""
    return {
        "steps": request.steps,
        "frames": request.generated_frames,
        "width": request.width,
        "height": request.height,
        "fps": request.generated_fps,
        "cfg": request.cfg,
        "ran_model": request.model,
    }


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class ActivationTimer:
    """Times each call of one model's LoRA activation (its AdapterCache's `activate`, wrapped on the instance)."""

    def __init__(self, adapters: Any) -> None:
        self._activate = adapters.activate
        self.last_ms: float | None = None
        adapters.activate = self._timed

    def _timed(self, loras: Any) -> None:
        started = time.perf_counter()
        try:
            self._activate(loras)
        finally:
            self.last_ms = _ms_since(started)

    def take(self) -> float:
        """The last activation's ms (0 when none ran since the last take)."""
        value, self.last_ms = self.last_ms or 0.0, None
        return value


class InProcessGroup:
    def __init__(
        self,
        settings: Settings,
        catalog_path: Path,
        scratch: Path,
        *,
        stock: bool,
        keep_frames: bool = False,
        swap_with: str | None = None,
    ) -> None:
        self.scratch = scratch
        self.stock = stock
        self.keep_frames = keep_frames  # save each run's frames for psnr_db (bench.psnr)
        self.swap_with = swap_with
        self._timers: dict[str, ActivationTimer] = {}
        storage = scratch / "outputs"
        self.runner = new_runner(
            settings.model_copy(update={"catalog": catalog_path, "storage_url": f"file://{storage}"})
        )
        self.device = self.runner.pool.device

    # -- one run ------------------------------------------------------------------------------------------
    def run(self, document: dict[str, Any]) -> RunRecord:
        return self._run_stock(document) if self.stock else self._run_worker(document)

    def _run_worker(self, document: dict[str, Any]) -> RunRecord:
        """prepare -> generate -> finish, as the worker runs a job, with the pipeline's stages recorded."""
        runner, hooks = self.runner, SilentHooks()
        if self.swap_with is not None:
            runner.pool.acquire(self.swap_with)  # outside the clock: pushes this run's model off the device
        started = time.perf_counter()
        envelope = JobEnvelope.model_validate(document)
        validate_ms = _ms_since(started)
        prepared = runner.prepare(envelope, hooks)
        if runner.is_cached(prepared):
            raise BenchError(f"job {envelope.job_id} would be a cache hit: a benchmark must generate every run")
        acquiring = time.perf_counter()
        acquired = runner.pool.acquire(prepared.request.model)  # generate's first step, done here to time it
        load_ms = _ms_since(acquiring) if acquired.load_ms or acquired.swap_ms else 0.0
        timer = self._timer(prepared.request.model, acquired.model.adapters)
        prepared.stages = StageRecorder()
        frames = runner.generate(prepared, hooks)
        result = runner.finish(prepared, frames)
        e2e_ms = _ms_since(started)
        frames_file = self._keep(envelope.job_id, frames)
        timings, recorder = result.timings, prepared.stages
        lora_ms = timer.take()
        pipeline = {stage: value for stage, value in recorder.stages_ms().items() if value is not None}
        steps = recorder.step_seconds()
        request = prepared.request
        video = file_of(result.url)
        return RunRecord(
            e2e_ms=e2e_ms,
            stages={
                "prepare": validate_ms + timings.prepare_ms - load_ms - lora_ms,
                "load": load_ms,
                "lora": lora_ms,
                **pipeline,
                "encode": timings.encode_ms,
                "upload": timings.upload_ms,
            },
            steady_step_seconds=steps[1:] if len(steps) >= 2 else steps,
            **_shape_of(request),
            output_bytes=video.stat().st_size if video else None,
            video=video,
            poster=file_of(result.thumbnail_url),
            frames_file=frames_file,
            condition_ms=timings.condition_ms,
        )

    def _timer(self, model: str, adapters: Any) -> ActivationTimer:
        timer = self._timers.get(model)
        if timer is None:
            timer = self._timers[model] = ActivationTimer(adapters)
        return timer

    def _keep(self, job_id: str, frames: np.ndarray) -> Path | None:
        """The run's frames as a .npy file in the scratch folder (after the run's clock stopped)."""
        if not self.keep_frames:
            return None
        path = self.scratch / f"{job_id}.npy"
        np.save(path, frames)
        return path

    def _run_stock(self, document: dict[str, Any]) -> RunRecord:
        """The pipeline called directly with the kwargs the worker would pass; only the call is timed."""
        import torch

        runner, hooks = self.runner, SilentHooks()
        prepared = runner.prepare(JobEnvelope.model_validate(document), hooks)
        request = prepared.request
        loaded = runner.pool.acquire(request.model).model
        loaded.adapters.activate(request.loras)
        kwargs = loaded.family.call_kwargs(request, prepared.image)
        synchronize(self.device)
        started = time.perf_counter()
        output = loaded.pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(request.seed))
        synchronize(self.device)
        call_ms = _ms_since(started)
        frames = frames_to_uint8(output)
        frames_file = self._keep(prepared.job_id, frames)
        video, poster = self.scratch / f"{prepared.job_id}.mp4", self.scratch / f"{prepared.job_id}.jpg"
        encode_video(frames, request.timing, video)
        write_thumbnail(frames[0], poster)
        return RunRecord(
            e2e_ms=call_ms,
            stages={"generate": call_ms},
            steady_step_seconds=[],
            **_shape_of(request),
            output_bytes=video.stat().st_size,
            video=video,
            poster=poster,
            frames_file=frames_file,
        )

    # -- what a row reports besides latency ---------------------------------------------------------------
    def configs(self, model: str) -> dict[str, Config | None] | None:
        return configs_of_pipeline(self.runner.pool.get(model).pipe)

    def reset_peak(self) -> None:
        reset_peak_memory(self.device)

    def peak_device_bytes(self) -> int | None:
        return peak_memory_bytes(self.device)

    def host_rss_bytes(self) -> int | None:
        return rss_bytes()

    def close(self) -> None:
        """Drop the runner and its models, so the next group starts with the device's memory free."""
        del self.runner
        gc.collect()
        if is_cuda(self.device):
            import torch

            torch.cuda.empty_cache()
