"""Events on `{prefix}:events` (approximate MAXLEN), optionally mirrored with PUBLISH for WebSocket relays."""

from __future__ import annotations

import time
from typing import Any

import redis
from pydantic import BaseModel

from npc_video_client.clock import now_ms
from npc_video_client.names import StreamNames
from worker.queue.connection import is_cluster
from worker.queue.job_state import StateWrite


class EventWriter:
    def __init__(self, client: redis.Redis, names: StreamNames, worker: str, maxlen: int, channel: str | None):
        self.client = client
        self.names = names
        self.worker = worker
        self.maxlen = maxlen
        self.channel = channel

    def stamp(self, event_type: type[BaseModel], **fields: Any) -> BaseModel:
        return event_type(timestamp=now_ms(), worker=self.worker, **fields)

    def add(self, pipe: Any, event: BaseModel) -> None:
        """Queue the event on a pipeline (or write it at once when `pipe` is the client itself)."""
        body = event.model_dump_json()
        pipe.xadd(self.names.events, {"event": body}, maxlen=self.maxlen, approximate=True)
        if self.channel:
            pipe.publish(self.channel, body)

    def emit(self, event: BaseModel, state: StateWrite | None = None) -> None:
        """Write the event (and the job's state that goes with it, when given) in one round trip."""
        if is_cluster(self.client):  # redis-py's cluster pipelines refuse PUBLISH: write at once
            self.add(self.client, event)
            if state is not None:
                self.client.set(state.key, state.body, ex=state.ttl_s)
            return
        pipe = self.client.pipeline(transaction=False)
        self.add(pipe, event)
        if state is not None:
            pipe.set(state.key, state.body, ex=state.ttl_s)
        for reply in pipe.execute(raise_on_error=False):
            if isinstance(reply, Exception):  # the server's own error (a failover's READONLY, NOREPLICAS, ...)
                raise reply


class ProgressThrottle:
    """At most one progress event per interval per job; the last step is always reported."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_s = interval_ms / 1000
        self._last = float("-inf")

    def due(self, step: int, total: int) -> bool:
        now = time.monotonic()
        if step >= total or now - self._last >= self.interval_s:
            self._last = now
            return True
        return False
