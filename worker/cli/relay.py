"""`npc-worker relay --format pixsim7`: re-publish the events stream on another system's pub/sub channel."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from worker.cli.app import app
from worker.cli.exits import fail, redis_errors
from worker.cli.options import PrefixOption, RedisUrlOption, settings_from

DEFAULT_CONSUMER = "relay"


class FormatName(StrEnum):
    PIXSIM7 = "pixsim7"


class EventsChoice(StrEnum):
    PROGRESS = "progress"
    ALL = "all"


@app.command()
def relay(
    *,
    relay_format: Annotated[FormatName, typer.Option("--format", help="the consuming system's event shape")],
    channel: Annotated[
        str | None, typer.Option("--channel", help="PUBLISH here (default: the format's, pixsim7:events:v1)")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="the relay's consumer group on the events stream (relay-FORMAT)")
    ] = None,
    consumer: Annotated[
        str, typer.Option("--consumer", help="consumer name; keep it across restarts to resume pending entries")
    ] = DEFAULT_CONSUMER,
    from_start: Annotated[
        bool,
        typer.Option("--from-start", help="a group created now starts at the stream's oldest event, not at new ones"),
    ] = False,
    origin: Annotated[str, typer.Option("--origin", help="the `origin` the messages name")] = "npc-video-worker",
    events: Annotated[
        EventsChoice,
        typer.Option(
            "--events",
            help="progress: running jobs' progress only (pixsim7's poller owns every state change); all: the terminal "
            "events too, for subscribers other than pixsim7's generations",
        ),
    ] = EventsChoice.PROGRESS,
    progress_interval_ms: Annotated[
        int,
        typer.Option("--progress-interval-ms", min=0, help="at most one progress message per job this often"),
    ] = 1_000,
    publish_url: Annotated[
        str | None,
        typer.Option(
            "--publish-url",
            envvar="NPC_RELAY_PUBLISH_URL",
            help="PUBLISH on this Redis (the consuming system's) instead of the events' Redis",
            show_envvar=True,
        ),
    ] = None,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Relay the events of `{prefix}:events` to a pub/sub channel in another system's shape, at least once, until
    SIGTERM/SIGINT: by default running jobs' progress only (--events all: the terminal events too). A restarted relay
    resumes where it stopped (its consumer group keeps the position)."""
    import redis

    from npc_video_client.names import StreamNames
    from worker.logs import configure_logging
    from worker.queue.connection import connect, open_redis
    from worker.relay import Pixsim7Events, Pixsim7Format, PublishRefused, Relay, RelayOptions
    from worker.shutdown import ImmediateShutdown, ShutdownFlag

    settings = settings_from(redis_url=redis_url, prefix=prefix)
    if publish_url is not None and not publish_url.startswith(("redis://", "rediss://")):
        fail("--publish-url (NPC_RELAY_PUBLISH_URL) must be a redis:// or rediss:// URL")
    configure_logging(log_format=settings.log_format)
    chosen = Pixsim7Format(origin, Pixsim7Events(events.value), progress_interval_ms)
    options = RelayOptions(
        channel=channel or chosen.default_channel,
        group=group or f"relay-{chosen.name}",
        consumer=consumer,
        start="0" if from_start else "$",
        block_ms=settings.block_ms,
    )
    shutdown = ShutdownFlag()
    shutdown.install()
    client = open_redis(settings)
    publisher: redis.Redis | None = None if publish_url is None else connect(publish_url, settings.block_ms)
    names = StreamNames(settings.prefix)
    try:
        with redis_errors(settings):
            Relay(client, names, chosen, options, shutdown=shutdown, publisher=publisher).run()
    except PublishRefused as exc:
        fail(str(exc))
    except ImmediateShutdown:  # a second signal while waiting for Redis: entries in hand stay pending
        raise typer.Exit(1) from None
