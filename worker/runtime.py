"""Build the long-lived parts from settings once: catalog, model pool, storage, job runner."""

from __future__ import annotations

import logging
import socket

from models.catalog import Catalog, load_catalog
from models.embedded import ensure_embedded_catalog
from models.pool import ModelPool
from npc_video_client.contract import CONTRACT_VERSION
from worker.jobs import JobRunner
from worker.metrics import WorkerMetrics
from worker.queue.connection import open_redis
from worker.service import Worker, watch_metrics
from worker.settings import Settings
from worker.shutdown import ShutdownFlag
from worker.storage import open_storage

log = logging.getLogger(__name__)


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


def build_worker(settings: Settings, shutdown: ShutdownFlag) -> Worker:
    """Everything `serve` runs on; an unusable catalog or storage is refused here, before any job."""
    runner = build_runner(settings)
    runner.storage.check()
    client = open_redis(settings)
    service = Worker(
        settings=settings,
        runner=runner,
        client=client,
        consumer=consumer_name(settings, runner.pool.device),
        shutdown=shutdown,
        metrics=WorkerMetrics(models=runner.catalog.models, build=build_info(runner.pool.device)),
    )
    watch_metrics(service)
    return service


def build_runner(settings: Settings) -> JobRunner:
    catalog = load_configured_catalog(settings)
    pool = ModelPool(
        catalog=catalog,
        device=settings.resolved_device(),
        lora_cache_size=settings.lora_cache_size,
        device_memory_budget=settings.device_memory_budget,
    )
    return JobRunner(settings, catalog, pool, open_storage(settings))
