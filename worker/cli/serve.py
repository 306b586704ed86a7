"""`npc-worker serve`: the long-running worker, or with --devices a supervisor of one worker per device."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from worker.cli.app import app
from worker.cli.exits import fail
from worker.cli.options import (
    CatalogOption,
    DeviceOption,
    PrefixOption,
    RedisUrlOption,
    StorageOption,
    check_device,
    settings_from,
    start_up,
)

HttpPortOption = Annotated[
    int | None, typer.Option("--http-port", help="/healthz, /readyz, /metrics (0 disables; with --devices: base port)")
]
GroupOption = Annotated[
    int,
    typer.Option(
        "--group",
        min=1,
        help="with --devices: devices per worker group (one consumer whose jobs are split over its devices)",
    ),
]
DevicesOption = Annotated[
    str | None,
    typer.Option(
        "--devices",
        help="all | 0,1,... | cpu,cpu: one worker process per device under a supervisor (bare-metal multi-GPU nodes)",
    ),
]


@app.command()
def serve(
    *,
    catalog: CatalogOption = None,
    device: DeviceOption = None,
    storage_url: StorageOption = None,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
    http_port: HttpPortOption = None,
    devices: DevicesOption = None,
    group: GroupOption = 1,
) -> None:
    """Consume npc_response jobs from the Redis lane streams until SIGTERM/SIGINT (a second one: at once)."""
    from worker.logs import configure_logging

    flags: dict[str, Any] = {
        "catalog": catalog,
        "device": device,
        "storage_url": storage_url,
        "redis_url": redis_url,
        "prefix": prefix,
        "http_port": http_port,
    }
    settings = settings_from(**flags)
    configure_logging(log_format=settings.log_format)
    if devices is not None:
        raise typer.Exit(_supervise(settings, devices, flags, group))
    if group != 1:
        fail("--group goes with --devices: the supervisor starts a group's processes, one per device")
    if settings.group_rank > 0:
        raise typer.Exit(_follow(settings))
    raise typer.Exit(_serve_one(settings))


def _follow(settings: Any) -> int:
    from worker.group.follower import follow
    from worker.shutdown import ShutdownFlag

    check_device(settings)
    ShutdownFlag().install()  # signals are the leader's to act on: a follower ends when its leader dismisses it
    return int(start_up(follow, settings))


def _supervise(settings: Any, devices: str, flags: dict[str, Any], group: int) -> int:
    from worker.supervisor import DevicesError, supervise

    if flags["device"] is not None:
        fail("--device and --devices exclude each other: --devices gives each worker its own device")
    child_env = {f"NPC_WORKER_{key.upper()}": str(value) for key, value in flags.items() if value is not None}
    child_env["NPC_WORKER_LOG_FORMAT"] = settings.log_format
    try:
        return supervise(
            devices, consumer=settings.consumer, http_port=settings.http_port, child_env=child_env, group=group
        )
    except DevicesError as exc:
        fail(str(exc))


def _serve_one(settings: Any) -> int:
    from models.catalog import check_model_paths
    from worker.http import HealthServer, PortInUse
    from worker.service import build_worker
    from worker.shutdown import ShutdownFlag

    check_device(settings)
    shutdown = ShutdownFlag()
    shutdown.install()

    def build(checked: Any) -> Any:
        service = build_worker(checked, shutdown)
        check_model_paths(service.runtime.catalog)
        return service

    service = start_up(build, settings)
    http = None
    if settings.http_port:
        try:
            http = HealthServer(
                settings.http_host, settings.http_port, service.healthz, service.readyz, service.metrics.registry
            )
        except PortInUse as exc:
            fail(exc.strerror or str(exc))
        http.start()
    try:
        code: int = service.serve()
    finally:
        if http is not None:
            http.stop()
    return code
