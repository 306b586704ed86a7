"""Everything the bench's measurements take from the running service (`worker/`), in one module: when the worker's
internals move or are renamed, this is the file to adapt (import-linter forbids the other direction: `worker` never
imports `bench`). The command itself (bench.cli) plugs into the worker's CLI and uses its conventions there: exit
statuses and one-line errors (worker.cli.exits), the shared `--catalog` / `--device` options (worker.cli.options).

- the job path run in-process: `build_runtime` builds the runtime as `serve` does; the bench calls its stages
  phase by phase (`RunnerPhases`: the preparer's `prepare` and `is_cached`, the model runner's `generate`, the
  outputs' `store` as `finish`) with `SilentHooks` (a job nobody watches), and reads `pool`
  (models.pool.ModelPool: `acquire`, `get`, `device`);
- the MP4 and poster writers of the worker (`encode_video`, `write_thumbnail`), for the stock rows;
- settings and the catalog as `serve` reads them (`Settings`, `load_configured_catalog`), and its logging;
- a throw-away redis-server for `--through queue` (`throwaway_redis`, `answers`, `free_port`, `LocalRedisError`),
  and `SERVE_COMMAND`, the child process the queue path starts.

Importing this module loads the worker's runtime (torch, diffusers: seconds), so the command imports it only once
it runs, never when `npc-worker` starts.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from models.pool import ModelPool
from npc_video_client.contract import JobEnvelope, JobResult
from worker.encode import encode_video, write_thumbnail
from worker.job import Frames, JobHooks, PreparedJob, SilentHooks
from worker.local_redis import LocalRedisError, answers, free_port, throwaway_redis
from worker.logs import configure_logging
from worker.runtime import Runtime, build_runtime, load_configured_catalog
from worker.settings import Settings

SERVE_COMMAND = (sys.executable, "-m", "worker", "serve")  # the queue path's child: `npc-worker serve`


@dataclass(frozen=True)
class RunnerPhases:
    """The worker's job path (worker.runtime.Runtime) as the bench times it, phase by phase."""

    runtime: Runtime

    @property
    def pool(self) -> ModelPool:
        return self.runtime.pool

    def prepare(self, envelope: JobEnvelope, hooks: JobHooks) -> PreparedJob:
        return self.runtime.preparer.prepare(envelope, hooks)

    def is_cached(self, prepared: PreparedJob) -> bool:
        return self.runtime.preparer.is_cached(prepared)

    def generate(self, prepared: PreparedJob, hooks: JobHooks) -> Frames:
        return self.runtime.models.generate(prepared, hooks)

    def finish(self, prepared: PreparedJob, frames: Frames | None) -> JobResult:
        return self.runtime.outputs.store(prepared, frames)


def new_runner(settings: Settings) -> RunnerPhases:
    """The job path `serve` would build from these settings (catalog, model pool, storage)."""
    return RunnerPhases(build_runtime(settings))


__all__ = [
    "SERVE_COMMAND",
    "LocalRedisError",
    "RunnerPhases",
    "Settings",
    "SilentHooks",
    "answers",
    "configure_logging",
    "encode_video",
    "free_port",
    "load_configured_catalog",
    "new_runner",
    "throwaway_redis",
    "write_thumbnail",
]
