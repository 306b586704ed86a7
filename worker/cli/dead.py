"""`npc-worker dead list|retry ID|purge`: the dead-letter stream `{prefix}:jobs:dead`.

Each dead entry holds the job's payload (`job`), why it ended (`error`: job_id, error_code, error_message, attempt)
and the entry it came from (`source`: `{lane stream}/{entry id}`). A retry puts the payload back on that lane as a
new entry. Since a job id with a final result never runs again (by design, duplicates are acknowledged only), the
retry first deletes the job's stored failed result, its completion list and its attempt counter; all of it,
the new lane entry and the removal of the dead entry happen in one transaction.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from npc_video_client.contract import JobStatus
from npc_video_client.protocol import text
from worker.cli.app import app
from worker.cli.exits import fail, redis_errors
from worker.cli.options import PrefixOption, RedisUrlOption, queue_client, settings_from
from worker.payload import read_job

dead_app = typer.Typer(no_args_is_help=True, help="The dead-letter stream: list, retry or purge its entries.")
app.add_typer(dead_app, name="dead")


def dead_entry(entry_id: Any, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """One dead entry as shown and retried: its id, the error fields, the source stream and the raw payload."""
    try:
        error = json.loads(fields.get(b"error", b"{}"))
    except ValueError:
        error = {"error_message": fields.get(b"error", b"").decode(errors="replace")}
    source = text(fields.get(b"source", b""))
    return {
        "id": text(entry_id),
        "job_id": error.get("job_id"),
        "error_code": error.get("error_code"),
        "error_message": error.get("error_message"),
        "attempt": error.get("attempt"),
        "source": source,
        "stream": source.rpartition("/")[0],
    }


@dead_app.command("list")
def list_entries(
    count: Annotated[int, typer.Option(min=1, help="show at most this many, oldest first")] = 100,
    json_lines: Annotated[bool, typer.Option("--json", help="one JSON object per entry")] = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """The dead entries with their job id, error and source lane."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    with redis_errors(settings):
        raw: Any = client.redis.xrange(client.names.dead, count=count)
        total = int(client.redis.xlen(client.names.dead))
    for entry_id, fields in raw:
        entry = dead_entry(entry_id, fields)
        if json_lines:
            typer.echo(json.dumps(entry))
            continue
        typer.echo(
            f"{entry['id']}  {entry['job_id']}  {entry['error_code']}  attempt {entry['attempt']}  "
            f"from {entry['stream']}: {entry['error_message']}"
        )
    typer.echo(f"{len(raw)} of {total} dead entries in {client.names.dead}", err=True)


@dead_app.command("retry")
def retry(
    entry_id: Annotated[str, typer.Argument(help="the dead entry's id, as `npc-worker dead list` shows it")],
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Put the job back on the lane it came from, so a worker runs it again from attempt 1."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    names = client.names
    with redis_errors(settings):
        found: Any = client.redis.xrange(names.dead, min=entry_id, max=entry_id, count=1)
        if not found:
            fail(f"no entry {entry_id} in {names.dead} (`npc-worker dead list` shows the ids)")
        fields = found[0][1]
        entry = dead_entry(entry_id, fields)
        try:
            lane = names.lane_of(entry["stream"])
        except ValueError:
            fail(f"dead entry {entry_id} came from {entry['source']!r}, not a lane stream of prefix {names.prefix!r}")
        # the payload names the job; one without a usable job id has no keys of its own (its dead letter says
        # `unknown:...`)
        reading = read_job(fields.get(b"job"), entry["job_id"] or "", settings.max_job_bytes)
        job_id = reading.job_id
        keys = _stale_keys(client, job_id) if reading.has_job_id else []
        pipe = client.redis.pipeline(transaction=True)
        if keys:
            pipe.delete(*keys)
        pipe.xadd(names.lane(lane), {"job": fields[b"job"]})
        pipe.xdel(names.dead, entry_id)
        replies = pipe.execute()
    new_id = text(replies[-2])
    typer.echo(f"job {job_id} is back on {names.lane(lane)} as entry {new_id}; dead entry {entry_id} removed")


def _stale_keys(client: Any, job_id: str) -> list[str]:
    """The keys that would make a worker treat the job as ended; a completed job is never run again."""
    stored = client.result(job_id)
    if stored is not None and stored.status == JobStatus.COMPLETED:
        fail(f"job {job_id} has a completed result; it is not run again (submit it under a new job_id)")
    names = client.names
    return [names.result(job_id), names.done(job_id), names.attempts(job_id)]


@dead_app.command("purge")
def purge(
    yes: Annotated[bool, typer.Option("--yes", help="really delete every dead entry")] = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Delete every entry of the dead-letter stream (asks for --yes)."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    with redis_errors(settings):
        if not yes:
            total = int(client.redis.xlen(client.names.dead))
            fail(f"purge deletes all {total} entries of {client.names.dead}; run it again with --yes")
        deleted = int(client.redis.xtrim(client.names.dead, maxlen=0, approximate=False))
    typer.echo(f"deleted {deleted} dead entries from {client.names.dead}")
