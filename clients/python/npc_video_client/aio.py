"""The producer client for asyncio (redis.asyncio): the same API as npc_video_client.client, with `await`.

client = AsyncNpcVideoClient("redis://127.0.0.1:6379/0")
job_id = await client.submit({...}, lane="high")
result = await client.wait(job_id, timeout_s=60)
async for event in await client.events(job_id): ...
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, cast

import redis
import redis.asyncio

from npc_video_client.client import SOCKET_TIMEOUT_S
from npc_video_client.contract import JobEnvelope, JobEvent, JobResult
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import (
    DEFAULT_CANCEL_TTL_S,
    DEFAULT_JOBS_MAXLEN,
    MAX_BLOCK_S,
    START_OF_STREAM,
    EventReader,
    NotFinal,
    block_seconds,
    no_such_key,
    not_final,
    parse_result,
    prepare_submission,
    text,
)


class AsyncNpcVideoClient:
    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "npc",
        client: redis.asyncio.Redis | None = None,
    ) -> None:
        self.redis = client or redis.asyncio.Redis.from_url(
            redis_url, socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT_S
        )
        self.names = StreamNames(prefix)

    async def submit(
        self,
        envelope: dict[str, Any] | JobEnvelope,
        lane: Lane | str = Lane.NORMAL,
        maxlen: int | None = DEFAULT_JOBS_MAXLEN,
    ) -> str:
        """See NpcVideoClient.submit."""
        job_id, body = prepare_submission(envelope)
        fields: Any = {"job": body}
        await self.redis.xadd(self.names.lane(Lane(lane)), fields, maxlen=maxlen, approximate=True)
        return job_id

    async def result(self, job_id: str) -> JobResult | None:
        stored = await self.redis.get(self.names.result(job_id))
        return None if stored is None else parse_result(stored)

    async def status(self, job_id: str) -> JobResult | NotFinal:
        """See NpcVideoClient.status."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.get(self.names.result(job_id))
        pipe.get(self.names.attempts(job_id))
        pipe.exists(self.names.running(job_id))
        stored, attempts, running = await pipe.execute()
        return parse_result(stored) if stored is not None else not_final(job_id, attempts, running)

    async def wait(self, job_id: str, timeout_s: float = 300.0, poll_s: float = 1.0) -> JobResult:
        """See NpcVideoClient.wait. Each waiting call holds one connection of the pool while it blocks."""
        deadline = time.monotonic() + timeout_s
        done = self.names.done(job_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                seconds = block_seconds(poll_s, remaining)  # fractional: redis-py types the timeout as int
                moved = await self.redis.blmove(done, done, seconds, src="RIGHT", dest="LEFT")  # type: ignore[arg-type]
                if moved is not None:
                    return parse_result(moved)
            stored = await self.result(job_id)
            if stored is not None:
                return stored
            if remaining <= 0:
                raise TimeoutError(f"no result for job {job_id} after {timeout_s:g} s")

    async def cancel(self, job_id: str, ttl_s: int = DEFAULT_CANCEL_TTL_S) -> None:
        await self.redis.set(self.names.cancel(job_id), "1", ex=ttl_s)

    async def events_cursor(self) -> str:
        """See NpcVideoClient.events_cursor."""
        try:
            info = await self.redis.xinfo_stream(self.names.events)
        except redis.ResponseError as exc:
            if not no_such_key(exc):
                raise
            return START_OF_STREAM  # no events stream yet: every event to come is new
        return text(info["last-generated-id"])

    async def events(
        self, job_id: str | None = None, since: str = "$", block_ms: int | None = None
    ) -> AsyncEventStream:
        """See NpcVideoClient.events; awaiting it fixes "$" to the stream's last id, before any submit."""
        cursor = await self.events_cursor() if since == "$" else since
        return AsyncEventStream(self, EventReader(cursor, job_id), block_ms)

    async def close(self) -> None:
        await self.redis.aclose()


class AsyncEventStream(AsyncIterator[JobEvent]):
    """`async for event in stream`; `cursor` is the id of the last entry read."""

    def __init__(self, client: AsyncNpcVideoClient, reader: EventReader, block_ms: int | None) -> None:
        self._client = client
        self._reader = reader
        self._block_ms = block_ms
        self._ready: deque[JobEvent] = deque()

    @property
    def cursor(self) -> str:
        return self._reader.cursor

    async def __anext__(self) -> JobEvent:
        idle_until = None if self._block_ms is None else time.monotonic() + self._block_ms / 1000
        while not self._ready:
            if self._reader.finished:
                raise StopAsyncIteration
            remaining = MAX_BLOCK_S if idle_until is None else idle_until - time.monotonic()
            if remaining <= 0:
                raise StopAsyncIteration
            block = max(1, int(block_seconds(MAX_BLOCK_S, remaining) * 1000))
            events_key = self._client.names.events
            reply = await self._client.redis.xread({events_key: self._reader.cursor}, count=100, block=block)
            for _stream, entries in cast("list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]]", reply or []):
                for entry_id, fields in entries:
                    event = self._reader.read(entry_id, fields)
                    if event is not None:
                        self._ready.append(event)
        return self._ready.popleft()
