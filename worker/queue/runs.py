"""Where a run of a job starts: one atomic check that counts attempts and keeps a job from running twice.

A run starts only if the job has no final result yet (a job id that ended is never run again) and no other live
run holds the job's lock; it then takes the lock (a key that expires unless its worker's keepalive renews it)
and increments the job's attempt counter. Attempts therefore count runs, not deliveries: read-ahead, take-overs
and recoveries do not make a job look poisonous, and two entries of one job id never generate side by side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from npc_video_client.names import StreamNames

# Shared by the scripts that must not act on a job that already ended.
FINAL_RESULT_LUA = """
local function final_status(key)
  local stored = redis.call('GET', key)
  if not stored then return nil end
  local ok, doc = pcall(cjson.decode, stored)
  if not ok or type(doc) ~= 'table' then return nil end
  local s = doc['status']
  if s == 'completed' or s == 'failed' or s == 'expired' or s == 'cancelled' then return s end
  return nil
end
"""

# KEYS: result, lock, attempts.  ARGV: token, lock_ms, attempts_ttl_s.
_START = (
    FINAL_RESULT_LUA
    + """
local status = final_status(KEYS[1])
if status then return {'final', status} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'busy', holder} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
local attempt = redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {'run', attempt}
"""
)

_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Verdict(StrEnum):
    RUN = "run"  # the lock is ours: run it as attempt `attempt`
    FINAL = "final"  # the job already ended: acknowledge this entry, nothing more
    BUSY = "busy"  # another live run holds the job: look again later


@dataclass(frozen=True)
class RunStart:
    verdict: Verdict
    attempt: int = 0
    detail: str = ""  # the final status, or the holder of the lock


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RunGate:
    def __init__(self, client: redis.Redis, names: StreamNames, consumer: str, lock_ms: int, attempts_ttl_s: int):
        self.client = client
        self.names = names
        self.consumer = consumer
        self.lock_ms = lock_ms
        self.attempts_ttl_s = attempts_ttl_s
        self._start = client.register_script(_START)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def new_token(self, entry_id: str) -> str:
        """Names the run holding a job lock: consumer, entry and a nonce (two runs never share one)."""
        return f"{self.consumer}/{entry_id}/{uuid.uuid4().hex[:12]}"

    def start(self, job_id: str, token: str) -> RunStart:
        keys = [self.names.result(job_id), self.names.running(job_id), self.names.attempts(job_id)]
        reply: Any = self._start(keys=keys, args=[token, self.lock_ms, self.attempts_ttl_s])
        verdict = Verdict(_text(reply[0]))
        if verdict is Verdict.RUN:
            return RunStart(verdict, attempt=int(reply[1]))
        return RunStart(verdict, detail=_text(reply[1]))

    def renew(self, locks: list[tuple[str, str]]) -> None:
        """Keep the locks of the runs in progress here alive: (job_id, token) pairs, one round trip."""
        if not locks:
            return
        pipe = self.client.pipeline(transaction=False)
        for job_id, token in locks:
            self._renew(keys=[self.names.running(job_id)], args=[token, self.lock_ms], client=pipe)
        pipe.execute()

    def release(self, job_id: str, token: str) -> None:
        """Let the job go without a final write (its run failed and will be retried later)."""
        self._release(keys=[self.names.running(job_id)], args=[token])
