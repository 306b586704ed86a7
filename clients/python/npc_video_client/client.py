"""The producer side: submit jobs, wait for results, look at a job's state, cancel, follow events. Needs redis and
pydantic only (no torch). `npc_video_client.aio` has the same API for asyncio.

client = NpcVideoClient("redis://127.0.0.1:6379/0")
job_id = client.submit({"job_id": "j1", "operation_type": "npc_response", "params": {...}}, lane="high")
result = client.wait(job_id, timeout_s=60)

Every method turns an unreachable Redis into `RedisUnavailable` (one line, the password hidden).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

import redis

from npc_video_client.client_errors import JobAlreadyEnded, RedisUnavailable, UnknownJob, reachable
from npc_video_client.contract import JobEnvelope, JobEvent, JobResult, JobState
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import (
    DEFAULT_CANCEL_TTL_S,
    DEFAULT_STATE_TTL_S,
    MAX_BLOCK_S,
    START_OF_STREAM,
    CancelOutcome,
    EventReader,
    JobRejected,
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

__all__ = [
    "CancelOutcome",
    "EventStream",
    "JobAlreadyEnded",
    "JobRejected",
    "NpcVideoClient",
    "RedisUnavailable",
    "UnknownJob",
]

SOCKET_TIMEOUT_S = 30.0


class NpcVideoClient:
    def __init__(
        self,
        redis_url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "npc",
        client: redis.Redis | None = None,
        state_ttl_s: int = DEFAULT_STATE_TTL_S,
    ) -> None:
        """`state_ttl_s`: how long the state written at submit lives; keep it at the worker's result TTL
        (NPC_WORKER_RESULT_TTL_S, 7 days by default) so a job's state outlives it neither way."""
        self.redis = client or redis.Redis.from_url(
            redis_url, socket_connect_timeout=5, socket_timeout=SOCKET_TIMEOUT_S
        )
        self.names = StreamNames(prefix)
        self.state_ttl_s = check_state_ttl(state_ttl_s)

    def submit(self, envelope: dict[str, Any] | JobEnvelope, lane: Lane | str = Lane.NORMAL) -> str:
        """Validate, stamp `contract_version` and `submitted_at` when absent, and XADD to the lane with the job's
        `queued` state, in one transaction. Returns the job_id. JobRejected (nothing enqueued) names every problem;
        JobAlreadyEnded when the id already has a final result. Lanes are never trimmed here: the worker deletes each
        entry when its job ends. To follow the job's events, take `events_cursor()` (or open `events(job_id)`)
        before this."""
        job_id, body = prepare_submission(envelope)
        lane_key = self.names.lane(parse_lane(lane))
        result_key = self.names.result(job_id)
        with reachable(self.redis), self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(result_key)  # type: ignore[no-untyped-call]  # a result written before EXEC: checked again
                    stored = pipe.get(result_key)
                    ended = None if stored is None else ended_status(job_id, stored)
                    if ended is not None:
                        raise JobAlreadyEnded(job_id, ended)
                    pipe.multi()
                    fields: Any = {"job": body}
                    pipe.xadd(lane_key, fields)
                    pipe.set(self.names.state(job_id), queued_state(job_id), ex=self.state_ttl_s, nx=True)
                    pipe.execute()
                    return job_id
                except redis.WatchError:
                    continue

    def warm(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[str]:
        """Make an NPC's likely reactions ahead of time on the workers' idle time (the warm lane): one warm job per
        reaction, exactly the real job that `npc` + the reaction + preset + style will be. Returns the warm job ids.
        Warm jobs yield to real jobs and write no state or events but their end; the identical real job later finds
        its video made (a cache hit in milliseconds), or joins the warm job still making it. Warming a reaction
        again withdraws an earlier `warm_cancel` of it."""
        submissions = warm_submissions(npc, reactions, preset=preset, style=style, metadata=metadata)
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            queue_warm_jobs(pipe, self.names, submissions)
            pipe.execute()
        return [job_id for job_id, _body in submissions]

    def warm_cancel(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
        ttl_s: int = DEFAULT_CANCEL_TTL_S,
    ) -> list[str]:
        """Drop the warm jobs of these reactions (as given to `warm`), e.g. when the NPC leaves the scene: a waiting
        one ends `cancelled` when a worker takes it, a running one at its next step, unless a real job has joined it.
        Videos already made stay in the warm cache. Returns the warm job ids."""
        ids = warm_job_ids(npc, reactions, preset=preset, style=style)
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=False)
            queue_warm_cancels(pipe, self.names, ids, ttl_s)
            pipe.execute()
        return ids

    def warm_status(
        self,
        npc: Mapping[str, Any],
        reactions: Sequence[Mapping[str, Any]],
        *,
        preset: str | None = None,
        style: str | None = None,
    ) -> WarmStatus:
        """Which of these reactions (as given to `warm`) have their video ready now."""
        ids = warm_job_ids(npc, reactions, preset=preset, style=style)
        with reachable(self.redis):
            keys: list[Any] = self.redis.hmget(self.names.warm_ready, ids)
        return WarmStatus({job_id: key is not None for job_id, key in zip(ids, keys, strict=True)})

    def result(self, job_id: str) -> JobResult | None:
        """The stored final result, or None while there is none (or after its TTL)."""
        with reachable(self.redis):
            stored = self.redis.get(self.names.result(job_id))
        return None if stored is None else parse_result(stored)

    def status(self, job_id: str) -> JobState:
        """Where the job stands (`JobState`: queued, running, retrying, or how it ended, with progress 0..1 and the
        attempt). An ended job whose state expired (or was written by a worker older than 1.2) is described from its
        result. UnknownJob when there is neither: never submitted, or both expired."""
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self.names.state(job_id))
            pipe.get(self.names.result(job_id))
            stored_state, stored_result = pipe.execute()
        return resolve_state(job_id, stored_state, stored_result)

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
                with reachable(self.redis):
                    moved = self.redis.blmove(done, done, seconds, src="RIGHT", dest="LEFT")  # type: ignore[arg-type]
                if moved is not None:
                    return parse_result(moved)
            stored = self.result(job_id)
            if stored is not None:
                return stored
            if remaining <= 0:
                raise TimeoutError(f"no result for job {job_id} after {timeout_s:g} s")

    def cancel(self, job_id: str, ttl_s: int = DEFAULT_CANCEL_TTL_S) -> CancelOutcome:
        """Ask the worker to stop the job at its next step (job:cancelled); says what happened (CancelOutcome). The
        request expires after `ttl_s` (a job that never runs leaves nothing behind); the worker deletes it when the
        job ends. A job that already ended is left alone."""
        with reachable(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            pipe.get(self.names.state(job_id))
            pipe.get(self.names.result(job_id))
            stored_state, stored_result = pipe.execute()
            outcome = cancel_outcome(job_id, stored_state, stored_result)
            if outcome is not CancelOutcome.ALREADY_ENDED:
                self.redis.set(self.names.cancel(job_id), "1", ex=ttl_s)
        return outcome

    def events_cursor(self) -> str:
        """The id of the last entry of the events stream: record it before submitting, then read events from it,
        so no event of the job is missed however fast the worker is."""
        try:
            with reachable(self.redis):
                info = self.redis.xinfo_stream(self.names.events)
        except redis.ResponseError as exc:
            if not no_such_key(exc):
                raise
            return START_OF_STREAM  # no events stream yet: every event to come is new
        return text(info["last-generated-id"])

    def events(self, job_id: str | None = None, since: str = "$", block_ms: int | None = None) -> EventStream:
        """Events of the stream after `since` (an entry id, or "$": from now on, fixed here, not at the first
        read), parsed into the contract's event models, of one job or of all. With `job_id` the iteration ends after
        that job's final event, and at once when the job had already ended (within MAX_BLOCK_S when its final event
        was trimmed from the stream); it also ends once no event of interest came for `block_ms` (None: it waits as
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
        self._ask_if_ended = reader.job_id is not None  # first before any read: opened after the job ended

    @property
    def cursor(self) -> str:
        return self._reader.cursor

    def __next__(self) -> JobEvent:
        idle_until = None if self._block_ms is None else time.monotonic() + self._block_ms / 1000
        while not self._ready:
            if self._reader.finished:
                raise StopIteration
            if self._ask_if_ended:
                self._ask_if_ended = False
                if self._job_ended():
                    while not self._reader.finished and self._read(block_ms=None):
                        pass  # the terminal write added the final event with the result: read up to it
                    self._reader.end()
                    continue
            remaining = MAX_BLOCK_S if idle_until is None else idle_until - time.monotonic()
            if remaining <= 0:
                raise StopIteration
            block = max(1, int(block_seconds(MAX_BLOCK_S, remaining) * 1000))
            self._read(block_ms=block)
            self._ask_if_ended = self._reader.job_id is not None  # nothing of the job came: did it end?
        return self._ready.popleft()

    def _job_ended(self) -> bool:
        job_id = cast("str", self._reader.job_id)
        with reachable(self._client.redis):
            return bool(self._client.redis.exists(self._client.names.result(job_id)))

    def _read(self, block_ms: int | None) -> int:
        """One XREAD from the cursor; the number of entries it returned (0: caught up)."""
        events_key = self._client.names.events
        with reachable(self._client.redis):
            reply = self._client.redis.xread({events_key: self._reader.cursor}, count=100, block=block_ms)
        entries = 0
        for _stream, batch in cast("list[tuple[Any, list[tuple[Any, dict[Any, Any]]]]]", reply or []):
            for entry_id, fields in batch:
                entries += 1
                event = self._reader.read(entry_id, fields)
                if event is not None:
                    self._ready.append(event)
        return entries
