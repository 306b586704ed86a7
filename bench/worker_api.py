"""Everything the bench's measurements take from the running service (`worker/`), in one module: when the worker's
internals move or are renamed, this is the file to adapt (import-linter forbids the other direction: `worker` never
imports `bench`). The command itself (bench.cli) plugs into the worker's CLI and uses its conventions there: exit
statuses and one-line errors (worker.cli.exits), the shared `--catalog` / `--device` options (worker.cli.options).

- the job path run in-process: `build_runner` builds the runner as `serve` does; the bench calls its phases
  `prepare`, `is_cached`, `generate` and `finish` (`RunnerPhases`) with `SilentHooks` (a job nobody watches),
  and reads `runner.pool` (models.pool.ModelPool: `acquire`, `get`, `device`);
- the MP4 and poster writers of the worker (`encode_video`, `write_thumbnail`), for the stock rows;
- settings and the catalog as `serve` reads them (`Settings`, `load_configured_catalog`), and its logging;
- a throw-away redis-server for `--through queue` (`throwaway_redis`, `answers`, `free_port`, `LocalRedisError`),
  and `SERVE_COMMAND`, the child process the queue path starts.

Importing this module loads the worker's runtime (torch, diffusers: seconds), so the command imports it only once
it runs, never when `npc-worker` starts.
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import numpy as np

from npc_video_client.contract import JobEnvelope, JobResult
from worker.encode import encode_video, write_thumbnail
from worker.jobs import SilentHooks
from worker.local_redis import LocalRedisError, answers, free_port, throwaway_redis
from worker.logs import configure_logging
from worker.runtime import build_runner, load_configured_catalog
from worker.settings import Settings

SERVE_COMMAND = (sys.executable, "-m", "worker", "serve")  # the queue path's child: `npc-worker serve`


class RunnerPhases(Protocol):
    """What the bench calls on the worker's job runner (worker.jobs.JobRunner), phase by phase."""

    pool: Any  # models.pool.ModelPool

    def prepare(self, envelope: JobEnvelope, hooks: Any) -> Any: ...

    def is_cached(self, prepared: Any) -> bool: ...

    def generate(self, prepared: Any, hooks: Any) -> np.ndarray: ...

    def finish(self, prepared: Any, frames: np.ndarray | None) -> JobResult: ...


def new_runner(settings: Settings) -> RunnerPhases:
    """The job runner `serve` would build from these settings (catalog, model pool, storage)."""
    return build_runner(settings)


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
