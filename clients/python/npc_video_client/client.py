"""The producer side: submit jobs, wait for results, cancel. Needs redis and pydantic only (no torch).

client = NpcVideoClient("redis://127.0.0.1:6379/0")
job_id = client.submit({"job_id": "j1", "operation_type": "npc_response", "params": {...}}, lane="high")
result = client.wait(job_id, timeout_s=60)
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from pydantic import ValidationError

from npc_video_client.contract import JobEnvelope, JobResult, describe_validation_error
from npc_video_client.names import Lane, StreamNames

DEFAULT_JOBS_MAXLEN = 100_000


class JobRejected(ValueError):
    """The envelope would fail validation in the worker; raised before anything is enqueued."""


class NpcVideoClient:
    def __init__(
        self, redis_url: str = "redis://127.0.0.1:6379/0", prefix: str = "npc", client: redis.Redis | None = None
    ) -> None:
        self.redis = client or redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
        self.names = StreamNames(prefix)

    def submit(
        self,
        envelope: dict[str, Any] | JobEnvelope,
        lane: Lane | str = Lane.NORMAL,
        maxlen: int | None = DEFAULT_JOBS_MAXLEN,
    ) -> str:
        """Validate, stamp `submitted_at` when absent, and XADD to the lane. Returns the job_id."""
        raw = envelope.model_dump(mode="json", exclude_none=True) if isinstance(envelope, JobEnvelope) else envelope
        try:
            checked = JobEnvelope.model_validate(raw)
        except ValidationError as exc:
            raise JobRejected(describe_validation_error(exc)) from exc
        body = dict(raw)
        body.setdefault("submitted_at", int(time.time() * 1000))
        fields: Any = {"job": json.dumps(body)}
        self.redis.xadd(self.names.lane(Lane(lane)), fields, maxlen=maxlen, approximate=True)
        return checked.job_id

    def result(self, job_id: str) -> JobResult | None:
        stored = self.redis.get(self.names.result(job_id))
        return None if stored is None else JobResult.model_validate_json(stored)

    def wait(self, job_id: str, timeout_s: float = 300.0, poll_s: float = 0.2) -> JobResult:
        """Block until the job's final result is stored; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.result(job_id)
            if result is not None:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no result for job {job_id} after {timeout_s:.0f} s")
            time.sleep(poll_s)

    def cancel(self, job_id: str, ttl_s: int = 24 * 3600) -> None:
        """Ask the worker to stop the job at its next step (job:cancelled)."""
        self.redis.set(self.names.cancel(job_id), "1", ex=ttl_s)
