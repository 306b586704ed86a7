"""`npc-worker watch [JOB]`: follow the events stream; with a JOB, a progress bar until its final event."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import FrameType
from typing import Annotated, Any, NoReturn

import typer

from npc_video_client.contract import JobResult, JobStatus
from worker.cli.app import app
from worker.cli.exits import ExitCode, fail, redis_errors
from worker.cli.options import PrefixOption, RedisUrlOption, queue_client, settings_from
from worker.cli.status import outcome_code

BLOCK_MS = 1_000
BATCH = 500
FINAL_TYPES = {"job:completed": "completed", "job:expired": "expired", "job:cancelled": "cancelled"}


def final_status(event: dict[str, Any]) -> str | None:
    """The status an event ends its job with; None for processing, progress and retryable failures."""
    if event.get("type") == "job:failed":
        return None if event.get("retryable") else "failed"
    return FINAL_TYPES.get(str(event.get("type")))


def describe(event: dict[str, Any]) -> str:
    """One line: time, type, job, worker and what the event says."""
    kind = str(event.get("type"))
    when = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000).strftime("%H:%M:%S.%f")[:-3]
    detail = _detail(kind, event)
    return f"{when}  {kind:<15} {event.get('job_id')}  {event.get('worker')}" + (f"  {detail}" if detail else "")


def _detail(kind: str, event: dict[str, Any]) -> str:
    if kind == "job:processing":
        return f"attempt {event.get('attempt')}, {event.get('model')} / {event.get('preset')}"
    if kind == "job:progress":
        return f"step {event.get('step')}/{event.get('total_steps')}"
    if kind == "job:completed":
        return f"{event.get('url')} in {float(event.get('timings', {}).get('total_ms', 0)):.0f} ms"
    if kind == "job:failed":
        retry = ", will retry" if event.get("retryable") else ""
        return f"{event.get('error_code')}: {event.get('error_message')} (attempt {event.get('attempt')}{retry})"
    if kind == "job:expired":
        return f"deadline {event.get('deadline')}"
    return ""


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end the watch as Ctrl-C does (exit 0), also where it was started with SIGINT ignored:
    a script's `npc-worker watch > events &` inherits an ignored SIGINT, and `kill -INT` must still stop it."""
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class EventFollower:
    """Reads the events stream from a position on, in order, a batch per blocking read."""

    def __init__(self, client: Any, stream: str, start: str) -> None:
        self.client = client
        self.stream = stream
        self.position = start

    @classmethod
    def from_now(cls, client: Any, stream: str) -> EventFollower:
        last: Any = client.xrevrange(stream, count=1)
        return cls(client, stream, last[0][0].decode() if last else "0-0")

    def next_batch(self) -> list[dict[str, Any]]:
        reply: Any = self.client.xread({self.stream: self.position}, count=BATCH, block=BLOCK_MS)
        events = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self.position = entry_id.decode()
                try:
                    events.append(json.loads(fields[b"event"]))
                except (KeyError, ValueError):
                    continue  # not an event this tool can show (another writer's entry)
        return events


@app.command()
def watch(
    job_id: Annotated[str | None, typer.Argument(help="follow only this job, until its final event")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="with JOB: give up after this many seconds (exit 4)", min=0)
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="print each event as its JSON (no progress bar)")] = False,
    redis_url: RedisUrlOption = None,
    prefix: PrefixOption = None,
) -> None:
    """Follow the events of every job (Ctrl-C or SIGTERM stops, exit 0), or of one JOB with a progress bar until it
    ends: then its result JSON on stdout and exit 0 completed, 1 failed/cancelled/expired, 4 on --timeout."""
    settings = settings_from(redis_url=redis_url, prefix=prefix)
    client = queue_client(settings)
    try:
        with stopped_by_signals(), redis_errors(settings):
            follower = EventFollower.from_now(client.redis, client.names.events)
            if job_id is None:
                _follow_all(follower, json_lines)
            code = _follow_job(client, follower, job_id, timeout, json_lines)
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.OK) from None
    raise typer.Exit(code)


def _follow_all(follower: EventFollower, json_lines: bool) -> NoReturn:
    while True:
        for event in follower.next_batch():
            typer.echo(json.dumps(event) if json_lines else describe(event))


def _follow_job(client: Any, follower: EventFollower, job_id: str, timeout: float | None, json_lines: bool) -> int:
    """Events after `follower`'s position are read, and the result was stored with the final event: checking the
    result after taking the position misses nothing."""
    stored = client.result(job_id)
    if stored is not None:
        return _ended(stored, None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    deadline = None if timeout is None else time.monotonic() + timeout
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=json_lines) as progress:
        task = progress.add_task(f"{job_id}: waiting", total=None)
        while deadline is None or time.monotonic() < deadline:
            for event in follower.next_batch():
                if event.get("job_id") != job_id:
                    continue
                if json_lines:
                    typer.echo(json.dumps(event))
                _show(progress, task, job_id, event)
                ended = final_status(event)
                if ended is not None:
                    progress.stop()
                    return _ended(client.result(job_id), event)
    fail(f"job {job_id} did not end within {timeout:g} s (it goes on; watch it again)", ExitCode.TIMEOUT)


def _show(progress: Any, task: Any, job_id: str, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "job:processing":
        progress.update(task, description=f"{job_id}: attempt {event.get('attempt')} on {event.get('worker')}")
    elif kind == "job:progress":
        progress.update(task, total=event.get("total_steps"), completed=event.get("step"))
    elif kind == "job:failed" and event.get("retryable"):
        progress.update(task, description=f"{job_id}: {event.get('error_code')}, retrying", completed=0)


def _ended(result: JobResult | None, event: dict[str, Any] | None) -> int:
    """Print the result (or, once it has expired from Redis, the final event) and the exit code of its status."""
    if result is not None:
        typer.echo(result.model_dump_json())
        if result.status != JobStatus.COMPLETED:
            typer.echo(f"job {result.job_id} {result.status.value}: {result.error_message or ''}".rstrip(), err=True)
        return int(outcome_code(result.status))
    assert event is not None
    typer.echo(json.dumps(event))
    return int(ExitCode.OK if final_status(event) == "completed" else ExitCode.JOB_NOT_COMPLETED)
