"""The producer client for asyncio (redis.asyncio): the same API as npc_video_client.client, with `await`.

client = AsyncNpcVideoClient("redis://127.0.0.1:6379/0")
job_id = await client.submit({...}, lane="high")
result = await client.wait(job_id, timeout_s=60)
async for event in await client.events(job_id): ...
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import redis
import redis.asyncio

from npc_video_client.client import SOCKET_TIMEOUT_S
from npc_video_client.client_errors import JobAlreadyEnded, reachable
from npc_video_client.contract import JobEnvelope, JobEvent, JobResult, JobState
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import (
    DEFAULT_CANCEL_TTL_S,
    DEFAULT_STATE_TTL_S,
    MAX_BLOCK_S,
    START_OF_STREAM,
    CancelOutcome,
    EventReader,
    block_seconds,
    cancel_outcome,
    check_state_ttl,
    ended_status,
    no_such_key,
    parse_lane,
    parse_result,
    prepare_submission,
    queued_state,
    resolve_state,
    text,
)
from npc_video_client.warming import WarmStatus, queue_warm_cancels, queue_warm_jobs, warm_job_ids, warm_submissions


class AsyncNpcVideoClient:
    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "npc",
        client: redis.asyncio.Redis | None = None,
        state_ttl_s: int = DEFAULT_STATE_TTL_S,
    ) -> None:
        """See NpcVideoClient. `client` may use `decode_responses=True` (replies as str), as web backends often do."""
        self.redis = client or redis.asyncio.Redis.from_url(
            redis_url, socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT_S
        )
        self.names = StreamNames(prefix)
        self.state_ttl_s = check_state_ttl(state_ttl_s)

    async def submit(self, envelope: dict[str, Any] | JobEnvelope, lane: Lane | str = Lane.NORMAL) -> str:
        """See NpcVideoClient.submit."""
        job_id, body = prepare_submission(envelope)
        lane_key = self.names.lane(parse_lane(lane))
        result_key = self.names.result(job_id)
        with reachable(self.redis):
            async with self.redis.pipeline(transaction=True) as pipe:
                while True:
                    try:
                        await pipe.watch(result_key)  # a result written before EXEC aborts the transaction
                        stored = await pipe.get(result_key)
                        ended = None if stored is None else ended_status(job_id, stored)
                        if ended is not None:
                            raise JobAlreadyEnded(job_id, ended)
                        pipe.multi()  # type: ignore[no-untyped-call]
                        fields: Any = {"job": body}
                        pipe.xadd(lane_key, fields)
                        pipe.set(self.names.state(job_id), queued_state(job_id), ex=self.state_ttl_s, nx=True)
                        await pipe.execute()
                        return job_id
                    except redis.WatchError:
                        continue

    async def warm(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[str]:
        """See NpcVideoClient.warm."""
        submissions = warm_submissions(npc, reactions, preset=preset, style=style, metadata=metadata)
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            queue_warm_jobs(pipe, self.names, submissions)
            await pipe.execute()
        return [job_id for job_id, _body in submissions]

    async def warm_cancel(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
        ttl_s: int = DEFAULT_CANCEL_TTL_S,
    ) -> list[str]:
        """See NpcVideoClient.warm_cancel."""
        ids = warm_job_ids(npc, reactions, preset=preset, style=style)
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            queue_warm_cancels(pipe, self.names, ids, ttl_s)
            await pipe.execute()
        return ids

    async def warm_status(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
    ) -> WarmStatus:
        """See NpcVideoClient.warm_status."""
        ids = warm_job_ids(npc, reactions, preset=preset, style=style)
        with reachable(self.redis):
            keys: list[Any] = await self.redis.hmget(self.names.warm_ready, ids)
        return WarmStatus({job_id: key is not None for job_id, key in zip(ids, keys, strict=True)})

    async def result(self, job_id: str) -> JobResult | None:
        with reachable(self.redis):
            stored = await self.redis.get(self.names.result(job_id))
        return None if stored is None else parse_result(stored)

    async def status(self, job_id: str) -> JobState:
        """See NpcVideoClient.status."""
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self.names.state(job_id))
            pipe.get(self.names.result(job_id))
            stored_state, stored_result = await pipe.execute()
        return resolve_state(job_id, stored_state, stored_result)

    async def wait(self, job_id: str, timeout_s: float = 300.0, poll_s: float = 1.0) -> JobResult:
        """See NpcVideoClient.wait. Each waiting call holds one connection of the pool while it blocks."""
        deadline = time.monotonic() + timeout_s
        done = self.names.done(job_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                seconds = block_seconds(poll_s, remaining)  # fractional: redis-py types the timeout as int
                with reachable(self.redis):
                    moved = await self.redis.blmove(done, done, seconds, src="RIGHT", dest="LEFT")  # type: ignore[arg-type]
                if moved is not None:
                    return parse_result(moved)
            stored = await self.result(job_id)
            if stored is not None:
                return stored
            if remaining <= 0:
                raise TimeoutError(f"no result for job {job_id} after {timeout_s:g} s")

    async def cancel(self, job_id: str, ttl_s: int = DEFAULT_CANCEL_TTL_S) -> CancelOutcome:
        """See NpcVideoClient.cancel."""
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self.names.state(job_id))
            pipe.get(self.names.result(job_id))
            stored_state, stored_result = await pipe.execute()
            outcome = cancel_outcome(job_id, stored_state, stored_result)
            if outcome is not CancelOutcome.ALREADY_ENDED:
                await self.redis.set(self.names.cancel(job_id), "1", ex=ttl_s)
        return outcome

    async def events_cursor(self) -> str:
        """See NpcVideoClient.events_cursor."""
        try:
            with reachable(self.redis):
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
    """`async for event in stream`; `cursor` is the id of the last entry read. Ends as EventStream does."""

    def __init__(self, client: AsyncNpcVideoClient, reader: EventReader, block_ms: int | None) -> None:
        self._client = client
        self._reader = reader
        self._block_ms = block_ms
        self._ready: deque[JobEvent] = deque()
        self._ask_if_ended = reader.job_id is not None  # first before any read: opened after the job ended

    @property
    def cursor(self) -> str:
        return self._reader.cursor

    async def __anext__(self) -> JobEvent:
        idle_until = None if self._block_ms is None else time.monotonic() + self._block_ms / 1000
        while not self._ready:
            if self._reader.finished:
                raise StopAsyncIteration
            if self._ask_if_ended:
                self._ask_if_ended = False
                if await self._job_ended():
                    while not self._reader.finished and await self._read(block_ms=None):
                        pass  # the terminal write added the final event with the result: read up to it
                    self._reader.end()
                    continue
            remaining = MAX_BLOCK_S if idle_until is None else idle_until - time.monotonic()
            if remaining <= 0:
                raise StopAsyncIteration
            block = max(1, int(block_seconds(MAX_BLOCK_S, remaining) * 1000))
            await self._read(block_ms=block)
            self._ask_if_ended = self._reader.job_id is not None  # nothing of the job came: did it end?
        return self._ready.popleft()

    async def _job_ended(self) -> bool:
        job_id = cast("str", self._reader.job_id)
        with reachable(self._client.redis):
            return bool(await self._client.redis.exists(self._client.names.result(job_id)))

    async def _read(self, block_ms: int | None) -> int:
        events_key = self._client.names.events
        with reachable(self._client.redis):
            reply = await self._client.redis.xread({events_key: self._reader.cursor}, count=100, block=block_ms)
        entries = 0
        for _stream, batch in cast("list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]]", reply or []):
            for entry_id, fields in batch:
                entries += 1
                event = self._reader.read(entry_id, fields)
                if event is not None:
                    self._ready.append(event)
        return entries
