"""The long-lived parts, built once from settings: catalog, model pool, storage and the stages that use them.

`Runtime.run` takes one job through the same stages as the service, in-process and without Redis (CLI `generate`,
the bench, tests): read -> prepare -> generate (unless cached) -> store, every failure a result.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

from models.catalog import Catalog, load_catalog
from models.embedded import ensure_embedded_catalog
from models.pool import ModelPool
from npc_video_client.contract import CONTRACT_VERSION, ErrorCode, JobResult
from npc_video_client.errors import JobError
from worker.failures import as_job_error, failure_result
from worker.group.lockstep import Channel
from worker.job import JobHooks, PreparedJob, SilentHooks, request_summary
from worker.model_runner import ModelRunner
from worker.outputs import Outputs
from worker.payload import read_job
from worker.preparation import Preparer
from worker.settings import Settings
from worker.storage import Storage, open_storage

log = logging.getLogger(__name__)
UNKNOWN_JOB_ID = "unknown"


@dataclass
class Runtime:
    settings: Settings
    catalog: Catalog
    pool: ModelPool
    storage: Storage
    preparer: Preparer
    models: ModelRunner
    outputs: Outputs

    def run(self, payload: Any, hooks: JobHooks | None = None) -> JobResult:
        """One job in-process; `payload` is JSON text or a decoded envelope. Never raises for the job's own
        failures: they become its result here (the failure boundary)."""
        hooks = hooks or SilentHooks()
        read = read_job(payload, UNKNOWN_JOB_ID, self.settings.max_job_bytes)
        prepared: PreparedJob | None = None
        try:
            if read.error is not None or read.envelope is None:
                raise read.error or JobError(ErrorCode.INVALID_PARAMS, "job cannot be read")
            prepared = self.preparer.prepare(read.envelope, hooks)
            frames = None if self.preparer.is_cached(prepared) else self.models.generate(prepared, hooks)
            return self.outputs.store(prepared, frames)
        except Exception as exc:
            partial = request_summary(read.job_id, prepared.request) if prepared else None
            return failure_result(read.job_id, as_job_error(exc), partial, read.metadata)


def load_configured_catalog(settings: Settings) -> Catalog:
    if settings.catalog is not None:
        return load_catalog(settings.catalog)
    log.info("no catalog configured: using the embedded demo catalog under %s", settings.data_dir)
    return ensure_embedded_catalog(settings.data_dir)


def consumer_name(settings: Settings, device: str) -> str:
    """Stable per host and device, so a restarted worker first re-reads its own pending entries."""
    return settings.consumer or f"{socket.gethostname()}:{device}"


def build_info(device: str) -> dict[str, str]:
    """The versions `npc_build_info` reports."""
    from importlib.metadata import PackageNotFoundError, version

    import diffusers
    import torch

    try:
        own = version("npc-video-worker")
    except PackageNotFoundError:
        own = "unknown"
    return {
        "version": own,
        "contract_version": str(CONTRACT_VERSION),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "device": device,
    }


def build_runtime(settings: Settings, group: Channel | None = None, catalog: Catalog | None = None) -> Runtime:
    """`group`: this process's part of a worker group (worker.group), when it is in one; `catalog`: already loaded."""
    catalog = catalog if catalog is not None else load_configured_catalog(settings)
    pool = ModelPool(
        catalog=catalog,
        device=settings.resolved_device(),
        lora_cache_size=settings.lora_cache_size,
        device_memory_budget=settings.device_memory_budget,
        group_size=settings.group_size,
    )
    storage = open_storage(settings)
    return Runtime(
        settings=settings,
        catalog=catalog,
        pool=pool,
        storage=storage,
        preparer=Preparer(settings, catalog, pool, storage),
        models=ModelRunner(settings, catalog, pool, group),
        outputs=Outputs(storage),
    )
