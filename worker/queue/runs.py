"""Where a run of a job starts: one atomic claim that keeps a job from running twice, and the attempt count.

The intake claims a job for a run only if it has no final result yet (a job id that ended is never run again)
and no other live run holds the job's lock; the claim takes the lock, a key that expires unless its worker's
keepalive renews it, so two entries of one job id never run side by side. The attempt is counted when the run
really begins: when the device starts it (or it goes out as a cache hit), or when its preparation fails. Attempts
therefore count runs, not deliveries, and not jobs merely prepared ahead of the device when their worker died:
read-ahead, prefetching, take-overs and recoveries do not make a job look poisonous.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from npc_video_client.contract import JobProcessingEvent, QualityPreset
from npc_video_client.names import StreamNames
from npc_video_client.protocol import text
from worker.queue.connection import run_scripts
from worker.queue.events import EventWriter
from worker.queue.job_state import JobStates, Progress, StateWrite
from worker.queue.leases import Lease

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

# KEYS: result, lock.  ARGV: token, lock_ms, the token prefix of this consumer and entry.
# A lock held under this consumer name for this very entry was left by its previous process (a restart under the
# same name): it is taken over at once instead of waiting for it to expire.
_CLAIM = (
    FINAL_RESULT_LUA
    + """
local status = final_status(KEYS[1])
if status then return {'final', status} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] and string.sub(holder, 1, #ARGV[3]) ~= ARGV[3] then return {'busy', holder} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'run', ''}
"""
)
# KEYS: attempts, events, state.  ARGV: attempts_ttl_s, max_attempts, the job:processing event's JSON object without
# its attempt ('' = no event), events MAXLEN, PUBLISH channel ('' = none), the job's running state without its
# attempt ('' = none), the state's TTL s. The attempt, known only here, is appended as each object's last member.
# One round trip: the device starts the run right beside it, so its gap between jobs stays a fraction of a
# millisecond of Redis.
_BEGIN = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local function with_attempt(object) return string.sub(object, 1, -2) .. ',"attempt":' .. n .. '}' end
if n <= tonumber(ARGV[2]) and ARGV[3] ~= '' then
  local body = with_attempt(ARGV[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'event', body)
  if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], body) end
  if ARGV[6] ~= '' then redis.call('SET', KEYS[3], with_attempt(ARGV[6]), 'EX', ARGV[7]) end
end
return n
"""

# Renew the holder's lock; one that expired while Redis was unreachable (or lost with its data) is taken again
# when nobody else took it meanwhile.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if not holder then return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) and 1 or 0 end
return 0
"""
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass
class Run:
    """One claimed run of a job: its lease, the job lock's token, its attempt number (0 until it begins), the
    envelope's metadata (echoed in every event and the result) and how far it got (its state's progress)."""

    lease: Lease
    job_id: str
    token: str
    attempt: int = 0
    metadata: dict[str, Any] | None = None
    progress: Progress = field(default_factory=Progress)


class RunRegistry:
    """The runs in progress here, whose job locks the keepalive renews."""

    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        self._lock = threading.Lock()

    def track(self, run: Run) -> None:
        with self._lock:
            self._runs[id(run.lease)] = run

    def untrack(self, run: Run) -> None:
        with self._lock:
            self._runs.pop(id(run.lease), None)

    def forget(self, lease: Lease) -> None:
        with self._lock:
            self._runs.pop(id(lease), None)

    def locks(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(run.job_id, run.token) for run in self._runs.values()]


@dataclass(frozen=True)
class Announcement:
    """What a run that begins writes: its job:processing event and its running state, as JSON objects without their
    `attempt`, which is known only then (the begin script appends it)."""

    event_without_attempt: str
    max_attempts: int
    maxlen: int
    channel: str | None
    state: StateWrite | None = None  # its body without the attempt

    def __post_init__(self) -> None:
        objects = [self.event_without_attempt] + ([self.state.body] if self.state else [])
        if not all(text.endswith("}") for text in objects):
            raise ValueError("an announcement's event and state are JSON objects")


class Verdict(StrEnum):
    RUN = "run"  # the lock is ours: prepare it, and count its attempt when it begins
    FINAL = "final"  # the job already ended: acknowledge this entry, nothing more
    BUSY = "busy"  # another live run holds the job: look again later


@dataclass(frozen=True)
class Claim:
    verdict: Verdict
    detail: str = ""  # the final status, or the holder of the lock


class RunGate:
    def __init__(
        self,
        client: redis.Redis,
        names: StreamNames,
        consumer: str,
        lock_ms: int,
        attempts_ttl_s: int,
        *,
        events: EventWriter,
        states: JobStates,
        max_attempts: int,
    ):
        self.client = client
        self.names = names
        self.consumer = consumer
        self.lock_ms = lock_ms
        self.attempts_ttl_s = attempts_ttl_s
        self.events = events
        self.states = states
        self.max_attempts = max_attempts
        self._claim = client.register_script(_CLAIM)
        self._begin = client.register_script(_BEGIN)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def new_token(self, entry_id: str) -> str:
        """Names the run holding a job lock: consumer, entry and a nonce (two runs never share one)."""
        return f"{self._token_prefix(entry_id)}{uuid.uuid4().hex[:12]}"

    def _token_prefix(self, entry_id: str) -> str:
        return f"{self.consumer}/{entry_id}/"

    def claim(self, job_id: str, token: str) -> Claim:
        keys = [self.names.result(job_id), self.names.running(job_id)]
        entry_id = token.removeprefix(f"{self.consumer}/").split("/", 1)[0]
        args: list[Any] = [token, self.lock_ms, self._token_prefix(entry_id)]
        reply: Any = self._claim(keys=keys, args=args)
        return Claim(Verdict(text(reply[0])), detail=text(reply[1]))

    def begin(self, job_id: str, announce: Announcement | None = None) -> int:
        """Count a run that begins (on the device, as a cache hit, or failing in preparation): its attempt. With
        `announce`, its job:processing event is written in the same step, unless the run is one too many."""
        args: list[Any] = [self.attempts_ttl_s, 0, "", 1, "", "", 1]
        if announce is not None:
            state = announce.state
            args = [
                self.attempts_ttl_s,
                announce.max_attempts,
                announce.event_without_attempt,
                announce.maxlen,
                announce.channel or "",
                state.body if state else "",
                state.ttl_s if state else 1,
            ]
        keys = [self.names.attempts(job_id), self.names.events, self.names.state(job_id)]
        return int(self._begin(keys=keys, args=args))

    def begin_run(self, run: Run, model: str, preset: QualityPreset, steps: int) -> int:
        """The run begins on the device or as a cache hit: its attempt counted, its job:processing event and its
        running state written, in one round trip (neither for a run one too many: it ends at once). Sets and returns
        `run.attempt`."""
        event = self.events.stamp(
            JobProcessingEvent, job_id=run.job_id, attempt=0, model=model, preset=preset, metadata=run.metadata
        )
        announce = Announcement(
            event.model_dump_json(exclude={"attempt"}),
            self.max_attempts,
            self.events.maxlen,
            self.events.channel,
            state=self.states.running_without_attempt(run.job_id, steps),
        )
        run.attempt = self.begin(run.job_id, announce)
        return run.attempt

    def renew(self, locks: list[tuple[str, str]]) -> None:
        """Keep the locks of the runs in progress here alive: (job_id, token) pairs, one round trip."""
        if not locks:
            return
        replies = run_scripts(
            self.client, [(self._renew, [self.names.running(job_id)], [token, self.lock_ms]) for job_id, token in locks]
        )
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

    def release(self, job_id: str, token: str) -> None:
        """Let the job go without a final write: a claimed run that never began (a stop while it waited)."""
        self._release(keys=[self.names.running(job_id)], args=[token])
