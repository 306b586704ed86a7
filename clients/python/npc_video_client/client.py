"""The producer side: submit jobs, wait for results, cancel, look at a job, follow events. Needs redis and pydantic
only (no torch). `npc_video_client.aio` has the same API for asyncio.

client = NpcVideoClient("redis://127.0.0.1:6379/0")
job_id = client.submit({"job_id": "j1", "operation_type": "npc_response", "params": {...}}, lane="high")
result = client.wait(job_id, timeout_s=60)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import Any, cast

import redis

from npc_video_client.contract import JobEnvelope, JobEvent, JobResult
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import (
    DEFAULT_CANCEL_TTL_S,
    DEFAULT_JOBS_MAXLEN,
    MAX_BLOCK_S,
    START_OF_STREAM,
    EventReader,
    JobRejected,
    NotFinal,
    block_seconds,
    no_such_key,
    not_final,
    parse_result,
    prepare_submission,
    text,
)

__all__ = ["DEFAULT_JOBS_MAXLEN", "EventStream", "JobRejected", "NotFinal", "NpcVideoClient"]

SOCKET_TIMEOUT_S = 30.0


class NpcVideoClient:
    def __init__(
        self, redis_url: str = "redis://127.0.0.1:6379/0", prefix: str = "npc", client: redis.Redis | None = None
    ) -> None:
        self.redis = client or redis.Redis.from_url(
            redis_url, socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT_S
        )
        self.names = StreamNames(prefix)

    def submit(
        self,
        envelope: dict[str, Any] | JobEnvelope,
        lane: Lane | str = Lane.NORMAL,
        maxlen: int | None = DEFAULT_JOBS_MAXLEN,
    ) -> str:
        """Validate, stamp `contract_version` and `submitted_at` when absent, and XADD to the lane. Returns the
        job_id. To follow the job's events, take `events_cursor()` (or open `events(job_id)`) before this."""
        job_id, body = prepare_submission(envelope)
        fields: Any = {"job": body}
        self.redis.xadd(self.names.lane(Lane(lane)), fields, maxlen=maxlen, approximate=True)
        return job_id

    def result(self, job_id: str) -> JobResult | None:
        """The stored final result, or None while there is none (or after its TTL)."""
        stored = self.redis.get(self.names.result(job_id))
        return None if stored is None else parse_result(stored)

    def status(self, job_id: str) -> JobResult | NotFinal:
        """The final result, or NotFinal: how many runs started and whether a worker holds the job now."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.names.result(job_id))
        pipe.get(self.names.attempts(job_id))
        pipe.exists(self.names.running(job_id))
        stored, attempts, running = pipe.execute()
        return parse_result(stored) if stored is not None else not_final(job_id, attempts, running)

    def wait(self, job_id: str, timeout_s: float = 300.0, poll_s: float = 1.0) -> JobResult:
        """Block until the job's final result; TimeoutError after `timeout_s`.

        Blocks on the completion list with BLMOVE from the list to itself: the result stays there for every
        other waiter. The result key is read every `poll_s` too, for workers of contract 1.0 (no completion
        list) and results whose list has expired."""
        deadline = time.monotonic() + timeout_s
        done = self.names.done(job_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                seconds = block_seconds(poll_s, remaining)  # fractional: redis-py types the timeout as int
                moved = self.redis.blmove(done, done, seconds, src="RIGHT", dest="LEFT")  # type: ignore[arg-type]
                if moved is not None:
                    return parse_result(moved)
            stored = self.result(job_id)
            if stored is not None:
                return stored
            if remaining <= 0:
                raise TimeoutError(f"no result for job {job_id} after {timeout_s:g} s")

    def cancel(self, job_id: str, ttl_s: int = DEFAULT_CANCEL_TTL_S) -> None:
        """Ask the worker to stop the job at its next step (job:cancelled). The key expires after `ttl_s` (a job
        that never runs leaves nothing behind); the worker deletes it when the job ends."""
        self.redis.set(self.names.cancel(job_id), "1", ex=ttl_s)

    def events_cursor(self) -> str:
        """The id of the last entry of the events stream: record it before submitting, then read events from it,
        so no event of the job is missed however fast the worker is."""
        try:
            info = self.redis.xinfo_stream(self.names.events)
        except redis.ResponseError as exc:
            if not no_such_key(exc):
                raise
            return START_OF_STREAM  # no events stream yet: every event to come is new
        return text(info["last-generated-id"])

    def events(self, job_id: str | None = None, since: str = "$", block_ms: int | None = None) -> EventStream:
        """Events of the stream after `since` (an entry id, or "$": from now on, fixed here, not at the first
        read), parsed into the contract's event models, of one job or of all. The iteration ends after the job's
        final event (when `job_id` is given), or once no event of interest came for `block_ms` (None: it waits as
        long as it takes)."""
        cursor = self.events_cursor() if since == "$" else since
        return EventStream(self, EventReader(cursor, job_id), block_ms)

    def close(self) -> None:
        self.redis.close()


class EventStream(Iterator[JobEvent]):
    """An iterator of events; `cursor` is the id of the last entry read: `events(since=stream.cursor)` resumes."""

    def __init__(self, client: NpcVideoClient, reader: EventReader, block_ms: int | None) -> None:
        self._client = client
        self._reader = reader
        self._block_ms = block_ms
        self._ready: deque[JobEvent] = deque()

    @property
    def cursor(self) -> str:
        return self._reader.cursor

    def __next__(self) -> JobEvent:
        idle_until = None if self._block_ms is None else time.monotonic() + self._block_ms / 1000
        while not self._ready:
            if self._reader.finished:
                raise StopIteration
            remaining = MAX_BLOCK_S if idle_until is None else idle_until - time.monotonic()
            if remaining <= 0:
                raise StopIteration
            block = max(1, int(block_seconds(MAX_BLOCK_S, remaining) * 1000))
            events_key = self._client.names.events
            reply = self._client.redis.xread({events_key: self._reader.cursor}, count=100, block=block)
            for _stream, entries in cast("list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]]", reply or []):
                for entry_id, fields in entries:
                    event = self._reader.read(entry_id, fields)
                    if event is not None:
                        self._ready.append(event)
        return self._ready.popleft()
