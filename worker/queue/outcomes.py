"""The one guarded terminal write of a job, and the non-final report of a failed attempt.

A job ends exactly once. Its terminal write is one Lua script, atomic in Redis: it stores the result, appends the
final event (and its PUBLISH mirror), dead-letters a failure that will not be retried, clears the job's cancel
key, attempt counter and lock, pushes the result to the job's completion list, and acknowledges and deletes the
stream entry. If the job already has a final result (a duplicate entry, or a run that outlived its lock), it
changes nothing but acknowledging this entry: a completed result is never replaced, and no job gets a second
final event.

Acknowledging tolerates a lost stream or group (Redis restarted without its data): the result and event of a job
that was finished from memory are still written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis
from pydantic import BaseModel

from npc_video_client.contract import JobResult
from npc_video_client.names import GROUP, StreamNames
from worker.queue.job_state import StateWrite
from worker.queue.leases import Lease
from worker.queue.runs import FINAL_RESULT_LUA

# KEYS: 1 result, 2 events, 3 lane stream, 4 dead, 5 cancel, 6 attempts, 7 lock, 8 completion list, 9 state
# ARGV: 1 group, 2 entry id, 3 result JSON ('' = none: the entry had no usable job id), 4 event JSON,
#       5 dead-letter error JSON ('' = not dead-lettered), 6 payload, 7 source, 8 result TTL s, 9 events MAXLEN,
#       10 dead MAXLEN, 11 PUBLISH channel ('' = none), 12 lock token, 13 completion list TTL s,
#       14 final state JSON ('' = none), 15 state TTL s
_FINISH = (
    FINAL_RESULT_LUA
    + """
local function settle()
  if redis.call('GET', KEYS[7]) == ARGV[12] then redis.call('DEL', KEYS[7]) end
  redis.pcall('XACK', KEYS[3], ARGV[1], ARGV[2])
  redis.pcall('XDEL', KEYS[3], ARGV[2])
end
if ARGV[3] ~= '' and final_status(KEYS[1]) then
  settle()
  return 0
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[8])
  redis.call('RPUSH', KEYS[8], ARGV[3])
  redis.call('EXPIRE', KEYS[8], ARGV[13])
  if ARGV[14] ~= '' then redis.call('SET', KEYS[9], ARGV[14], 'EX', ARGV[15]) end
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[9], '*', 'event', ARGV[4])
if ARGV[11] ~= '' then redis.call('PUBLISH', ARGV[11], ARGV[4]) end
if ARGV[5] ~= '' then
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[10], '*', 'job', ARGV[6], 'error', ARGV[5], 'source', ARGV[7])
end
redis.call('DEL', KEYS[5], KEYS[6])
settle()
return 1
"""
)

# KEYS: 1 result, 2 events, 3 lock, 4 state.  ARGV: 1 event JSON, 2 events MAXLEN, 3 channel, 4 lock token,
# 5 retrying state JSON, 6 state TTL s.
_ATTEMPT_FAILED = (
    FINAL_RESULT_LUA
    + """
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
if final_status(KEYS[1]) then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[1]) end
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
return 1
"""
)

# KEYS: 1 lane stream, 2 completion list.  ARGV: 1 group, 2 entry id, 3 stored result ('' = none), 4 TTL s.
_DUPLICATE = """
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.pcall('XDEL', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Retention:
    """How long what a terminal write leaves behind lives."""

    result_ttl_s: int
    events_maxlen: int
    dead_maxlen: int
    completion_ttl_s: int
    channel: str | None


def dead_letter_error(job_id: str, code: str, message: str, attempt: int) -> str:
    return json.dumps({"job_id": job_id, "error_code": code, "error_message": message, "attempt": attempt})


class Outcomes:
    def __init__(self, client: redis.Redis, names: StreamNames, retention: Retention) -> None:
        self.client = client
        self.names = names
        self.retention = retention
        self._finish = client.register_script(_FINISH)
        self._attempt_failed = client.register_script(_ATTEMPT_FAILED)
        self._duplicate = client.register_script(_DUPLICATE)

    def finish(
        self,
        lease: Lease,
        job_id: str,
        event: BaseModel,
        *,
        result: JobResult | None,
        token: str = "",
        dead_error: str | None = None,
        state: StateWrite | None = None,
    ) -> bool:
        """The terminal write (`state`: the job's final state, written with its result). False when the job had
        already ended: then only this entry was acknowledged."""
        retention = self.retention
        keys = [
            self.names.result(job_id),
            self.names.events,
            lease.stream,
            self.names.dead,
            self.names.cancel(job_id),
            self.names.attempts(job_id),
            self.names.running(job_id),
            self.names.done(job_id),
            self.names.state(job_id),
        ]
        args: list[Any] = [
            GROUP,
            lease.entry_id,
            result.model_dump_json() if result is not None else "",
            event.model_dump_json(),
            dead_error or "",
            lease.payload or b"",
            lease.describe(),
            retention.result_ttl_s,
            retention.events_maxlen,
            retention.dead_maxlen,
            retention.channel or "",
            token,
            retention.completion_ttl_s,
            state.body if state is not None else "",
            state.ttl_s if state is not None else 1,
        ]
        return bool(self._finish(keys=keys, args=args))

    def attempt_failed(self, job_id: str, event: BaseModel, token: str, state: StateWrite) -> bool:
        """Report a failed attempt that will be retried (event and `retrying` state) and let go of the job's lock;
        nothing when it ended."""
        keys = [self.names.result(job_id), self.names.events, self.names.running(job_id), self.names.state(job_id)]
        retention = self.retention
        args: list[Any] = [
            event.model_dump_json(),
            retention.events_maxlen,
            retention.channel or "",
            token,
            state.body,
            state.ttl_s,
        ]
        return bool(self._attempt_failed(keys=keys, args=args))

    def duplicate(self, lease: Lease, job_id: str, stored: JobResult | None) -> None:
        """Acknowledge an entry of a job that already ended, pushing its stored result for waiting clients."""
        keys = [lease.stream, self.names.done(job_id)]
        body = stored.model_dump_json() if stored is not None else ""
        self._duplicate(keys=keys, args=[GROUP, lease.entry_id, body, self.retention.completion_ttl_s])

    def stored_result(self, job_id: str) -> JobResult | None:
        """The job's stored result, or None when missing or unreadable."""
        stored = self.client.get(self.names.result(job_id))
        if stored is None:
            return None
        try:
            return JobResult.model_validate_json(stored)
        except ValueError:
            return None
