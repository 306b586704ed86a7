"""Options and start-up helpers shared by the commands: settings from flags, job files, configuration errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from worker.cli.exits import ExitCode, fail

CatalogOption = Annotated[
    Path | None, typer.Option("--catalog", help="catalog TOML (default: NPC_WORKER_CATALOG or the embedded demo)")
]
DeviceOption = Annotated[str | None, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
StorageOption = Annotated[str | None, typer.Option("--storage-url", help="file://DIR or s3://bucket/prefix")]
RedisUrlOption = Annotated[
    str | None, typer.Option("--redis-url", help="redis:// or rediss:// (default: NPC_WORKER_REDIS_URL)")
]
PrefixOption = Annotated[str | None, typer.Option("--prefix", help="key prefix (default: NPC_WORKER_PREFIX or npc)")]
SECRET_SETTINGS = frozenset({"redis_url", "redis_sentinel_password"})


def describe_settings_error(exc: ValidationError, flags: set[str]) -> str:
    """Each problem as `NPC_WORKER_NAME (--flag): reason`, naming the variable (and the flag when one was given)
    an operator has to change; values of secret settings are never echoed."""
    problems = []
    for error in exc.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names the variables
            problems.append(message)
            continue
        field = str(error["loc"][0])
        name = f"NPC_WORKER_{field.upper()}" + (f" (--{field.replace('_', '-')})" if field in flags else "")
        shown = "" if error["type"] == "value_error" or field in SECRET_SETTINGS else f" (got {error['input']!r})"
        problems.append(f"{name}: {message}{shown}")
    return "; ".join(problems)


def settings_from(**overrides: Any) -> Any:
    from worker.settings import Settings

    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        fail(f"invalid settings: {describe_settings_error(exc, set(given))}")


def check_device(settings: Any) -> None:
    """A CUDA device that is asked for must be there: refused at start with the reason, not at the first job."""
    device = settings.device
    if not device.startswith("cuda"):
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        build = (
            f"torch {torch.__version__} is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        )
        fail(
            f"NPC_WORKER_DEVICE is {device!r} but no CUDA device is available ({build}); use cpu, or auto to take "
            "a GPU when there is one"
        )
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        fail(f"NPC_WORKER_DEVICE is {device!r} but only {count} CUDA device(s) are visible (cuda:0..cuda:{count - 1})")


def read_job_file(job_file: Path) -> str:
    if str(job_file) == "-":
        return sys.stdin.read()
    try:
        return job_file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read job file {job_file}: {exc.strerror or exc}")


def start_up(build: Any, settings: Any) -> Any:
    """Configuration errors (catalog, storage, a model a worker group cannot split) end the command with their
    message and exit status 2; an object store that cannot be reached at all, or members of a worker group that did
    not meet, with status 3."""
    from models.catalog import CatalogError
    from models.parallel import ParallelRefused
    from worker.group.membership import GroupStartError
    from worker.storage import StorageConfigError

    try:
        return build(settings)
    except (CatalogError, ParallelRefused) as exc:
        fail(str(exc))
    except GroupStartError as exc:
        fail(str(exc), ExitCode.INFRASTRUCTURE)
    except StorageConfigError as exc:
        unreachable = False
        if settings.storage_url.lower().startswith("s3://"):  # boto3 only where S3 is configured
            from worker.storage.s3 import endpoint_unreachable

            unreachable = endpoint_unreachable(exc)
        fail(str(exc), ExitCode.INFRASTRUCTURE if unreachable else ExitCode.USAGE)


def queue_client(settings: Any) -> Any:
    """The producer client on the Redis the settings describe (one server, a cluster or sentinels)."""
    from npc_video_client.client import NpcVideoClient
    from worker.queue.connection import open_redis

    return NpcVideoClient(settings.redis_url, settings.prefix, client=open_redis(settings))
