"""`npc-worker serve`: the long-running worker."""

from __future__ import annotations

import typer

from worker.cli.app import app
from worker.cli.options import CatalogOption, DeviceOption, StorageOption, settings_from, start_up


@app.command()
def serve(catalog: CatalogOption = None, device: DeviceOption = None, storage_url: StorageOption = None) -> None:
    """Consume npc_response jobs from the Redis lane streams until SIGTERM/SIGINT (a second one: at once)."""
    from worker.http import HealthServer
    from worker.logs import configure_logging
    from worker.runtime import build_worker
    from worker.shutdown import ShutdownFlag

    settings = settings_from(catalog=catalog, device=device, storage_url=storage_url)
    configure_logging(log_format=settings.log_format)
    shutdown = ShutdownFlag()
    shutdown.install()
    service = start_up(lambda s: build_worker(s, shutdown), settings)
    http = None
    if settings.http_port:
        http = HealthServer(
            settings.http_host, settings.http_port, service.healthz, service.readyz, service.metrics.registry
        )
        http.start()
    try:
        code = service.serve()
    finally:
        if http is not None:
            http.stop()
    raise typer.Exit(code)
