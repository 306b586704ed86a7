"""Build the long-lived parts from settings once: catalog, model pool, storage, job runner."""

from __future__ import annotations

import logging

from models.catalog import Catalog, load_catalog
from models.embedded import ensure_embedded_catalog
from models.pool import ModelPool
from worker.jobs import JobRunner
from worker.settings import Settings
from worker.storage import open_storage

log = logging.getLogger(__name__)


def load_configured_catalog(settings: Settings) -> Catalog:
    if settings.catalog is not None:
        return load_catalog(settings.catalog)
    log.info("no catalog configured: using the embedded demo catalog under %s", settings.data_dir)
    return ensure_embedded_catalog(settings.data_dir)


def build_runner(settings: Settings) -> JobRunner:
    catalog = load_configured_catalog(settings)
    pool = ModelPool(catalog=catalog, device=settings.resolved_device(), lora_cache_size=settings.lora_cache_size)
    return JobRunner(settings, catalog, pool, open_storage(settings.storage_url))
