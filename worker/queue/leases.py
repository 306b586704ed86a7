"""Leases on lane-stream entries: what this consumer owns, kept alive while it owns it, checked before it runs.

The registry is the one owner of every lease's scheduling state: other threads read a lease's fields and ask the
registry to change them (start it, put it back, delay it), and each change happens under the registry's lock.

An entry is owned from the moment Redis delivers it to this consumer (a fresh read, a take-over of a silent
consumer's entry, or this consumer name's own pending entries after a restart) until the terminal write
acknowledges it or the entry is found to belong to someone else. While owned, whether it runs, waits in a
read-ahead batch, waits for its retry or waits for a duplicate of its job to finish, its idle time is refreshed
by `keepalive` so no other worker takes it over; a refresh never steals an entry back from a new owner.

Every lease keeps its payload in memory, so an entry whose stream was lost (Redis restarted without persistence,
or the stream was trimmed) can still be finished honestly: run, and reported with a result and a final event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from npc_video_client.names import GROUP, LANES_BY_PRIORITY, Lane, StreamNames
from npc_video_client.protocol import text
from worker.queue.connection import run_scripts

log = logging.getLogger(__name__)

# Refresh the idle time of an entry only while this consumer owns it. Replies: owned (refreshed), taken (pending
# under another consumer), done (acknowledged, still in the stream), gone (not in the stream, or no group).
_REFRESH_IF_OWNED = """
local info = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(info) ~= 'table' or info.err then return 'gone' end
if #info == 0 then
  if #redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3]) == 0 then return 'gone' end
  return 'done'
end
if info[1][2] ~= ARGV[2] then return 'taken' end
-- XCLAIM drops an entry deleted while pending from the pending list and returns nothing for it
if #redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID') == 0 then return 'gone' end
return 'owned'
"""

# Give an owned entry back to the lane as a new entry (same payload), so any worker can take it at once.
_REQUEUE_IF_OWNED = """
local info = redis.pcall('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(info) ~= 'table' or info.err or #info == 0 or info[1][2] ~= ARGV[2] then return 0 end
redis.call('XADD', KEYS[1], '*', 'job', ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
return 1
"""


class Ownership(StrEnum):
    OWNED = "owned"
    TAKEN = "taken"
    DONE = "done"
    GONE = "gone"


# A duplicate entry of a job that runs elsewhere looks at the job lock again after these delays (the last repeats).
BUSY_RECHECK_S = (0.25, 0.5, 1.0, 2.0)


@dataclass(eq=False)  # identity: two leases on one entry id are never equal
class Lease:
    """One owned entry: where it came from and its payload, plus scheduling state that only `Leases` changes, under
    its lock (the fields are read-only here): `due` (monotonic) delays it (retry backoff, a busy duplicate), `skips`
    counts the times affinity passed it over, `running` holds from the start of its run until its terminal write,
    `solo` keeps it out of batches (its last attempt failed in one), `job_id` is what its payload said."""

    lane: Lane
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    origin: str = "read"
    _due: float = field(default=0.0, init=False, repr=False)
    _skips: int = field(default=0, init=False, repr=False)
    _running: bool = field(default=False, init=False, repr=False)
    _solo: bool = field(default=False, init=False, repr=False)
    _waits: int = field(default=0, init=False, repr=False)
    _job_id: str | None = field(default=None, init=False, repr=False)

    @property
    def payload(self) -> bytes | None:
        return self.fields.get(b"job")

    @property
    def priority(self) -> int:
        return LANES_BY_PRIORITY.index(self.lane)

    @property
    def due(self) -> float:
        return self._due

    @property
    def skips(self) -> int:
        return self._skips

    @property
    def running(self) -> bool:
        return self._running

    @property
    def solo(self) -> bool:
        return self._solo

    @property
    def job_id(self) -> str | None:
        return self._job_id

    def describe(self) -> str:
        return f"{self.stream}/{self.entry_id}"


class Leases:
    """The set of entries this consumer owns, every change to a lease's scheduling state, and every Redis operation
    that changes or checks ownership."""

    def __init__(self, client: redis.Redis, names: StreamNames, consumer: str, claim_idle_ms: int) -> None:
        self.client = client
        self.names = names
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._owned: dict[tuple[str, str], Lease] = {}
        self._lock = threading.Lock()  # intake, device, finisher and keepalive threads all ask for changes
        self._refresh = client.register_script(_REFRESH_IF_OWNED)
        self._requeue = client.register_script(_REQUEUE_IF_OWNED)

    # -- the owned set ------------------------------------------------------------------------------------
    def owned(self) -> list[Lease]:
        with self._lock:
            return list(self._owned.values())

    def waiting(self) -> list[Lease]:
        """Owned and not running: read ahead, recovered, taken over, or waiting for a retry."""
        return [lease for lease in self.owned() if not lease.running]

    def due_waiting(self, lane: Lane) -> int:
        """How many waiting entries of this lane may start now (the intake is about to prepare them)."""
        now = time.monotonic()
        return sum(1 for lease in self.waiting() if lease.lane == lane and lease.due <= now)

    def _add(self, lease: Lease) -> Lease:
        with self._lock:
            return self._owned.setdefault((lease.stream, lease.entry_id), lease)

    def _holds(self, lease: Lease) -> bool:
        return self._owned.get((lease.stream, lease.entry_id)) is lease

    # -- scheduling state: every change happens here, under the lock ------------------------------------------
    def start(self, lease: Lease, passed_over: Sequence[Lease] = ()) -> bool:
        """Mark a waiting lease running (and count a skip for each lease affinity passed over to pick it); False
        when it is no longer ours to run (handed back or taken meanwhile) or runs already."""
        with self._lock:
            for passed in passed_over:
                passed._skips += 1
            if not self._holds(lease) or lease._running:
                return False
            lease._running = True
            return True

    def identify(self, lease: Lease, job_id: str) -> None:
        """The job id its payload named (or the fallback of an unreadable payload)."""
        with self._lock:
            lease._job_id = job_id

    def put_back(self, lease: Lease) -> None:
        """A run that did not begin (a stop while it waited for the device): waiting again, to be handed back."""
        with self._lock:
            lease._running = False

    def retry_later(self, lease: Lease, delay_s: float, *, solo: bool) -> None:
        """A failed attempt that runs again after `delay_s`; `solo`: alone, not in a batch."""
        with self._lock:
            lease._running = False
            lease._solo = lease._solo or solo
            lease._due = time.monotonic() + delay_s

    def wait_for_other_run(self, lease: Lease) -> float:
        """Its job runs elsewhere (another entry holds the job lock): look again later, a little later each time.
        Returns the delay."""
        with self._lock:
            delay_s = BUSY_RECHECK_S[min(lease._waits, len(BUSY_RECHECK_S) - 1)]
            lease._waits += 1
            lease._running = False
            lease._due = time.monotonic() + delay_s
            return delay_s

    def release(self, lease: Lease) -> None:
        """Forget an entry: acknowledged by its terminal write, or found to belong to someone else."""
        with self._lock:
            if self._holds(lease):
                del self._owned[(lease.stream, lease.entry_id)]

    # -- acquiring --------------------------------------------------------------------------------------
    def ensure_groups(self) -> None:
        """Create the group on every lane (MKSTREAM; from id 0 so jobs enqueued before any worker count)."""
        for stream in self.names.lanes:
            try:
                self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read_new(self, lanes: list[Lane], count: int, block_ms: int | None) -> list[Lease]:
        """Entries never delivered before, up to `count` per lane, in lane priority order."""
        request: Any = {self.names.lane(lane): ">" for lane in lanes}
        response: Any = self.client.xreadgroup(GROUP, self.consumer, request, count=count, block=block_ms)
        leases = []
        for stream_name, items in response or []:
            stream = text(stream_name)
            lane = self.names.lane_of(stream)
            for entry_id, fields in items:
                leases.append(self._add(Lease(lane, stream, text(entry_id), dict(fields or {}))))
        leases.sort(key=lambda lease: lease.priority)
        return leases

    def take_over(self, lane: Lane, count: int) -> list[Lease]:
        """Entries of other consumers idle past claim_idle_ms (their worker died or lost Redis)."""
        stream = self.names.lane(lane)
        response: Any = self.client.xautoclaim(
            stream, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        leases = []
        for entry_id, fields in response[1]:
            if fields is None:  # deleted while pending (Redis < 7 reports these here): nothing left to run
                self.client.xack(stream, GROUP, entry_id)
                continue
            log.warning("took over entry %s of %s after %d ms idle", text(entry_id), stream, self.claim_idle_ms)
            leases.append(self._add(Lease(lane, stream, text(entry_id), dict(fields), origin="take-over")))
        return leases

    def recover_own(self) -> list[Lease]:
        """Entries this consumer name owned when its previous process stopped: they are ours, run them first."""
        leases = []
        for lane in LANES_BY_PRIORITY:
            stream = self.names.lane(lane)
            pending: Any = self.client.xpending_range(
                stream, GROUP, min="-", max="+", count=10_000, consumername=self.consumer
            )
            for item in pending:
                entry_id = text(item["message_id"])
                found: Any = self.client.xrange(stream, min=entry_id, max=entry_id, count=1)
                if not found:  # trimmed or deleted: no payload left to run
                    self.client.xack(stream, GROUP, entry_id)
                    continue
                leases.append(self._add(Lease(lane, stream, entry_id, dict(found[0][1]), origin="recovered")))
        return leases

    # -- checking and keeping ------------------------------------------------------------------------------
    def check(self, lease: Lease) -> Ownership:
        """Who owns the entry now; refreshes its idle time when it is still ours."""
        return Ownership(text(self._refresh(keys=[lease.stream], args=[GROUP, self.consumer, lease.entry_id])))

    def keepalive(self) -> dict[Ownership, int]:
        """Refresh every owned entry in one round trip; forget waiting entries that another consumer now owns
        or that were finished elsewhere (a running one stays: its job lock keeps it from running twice)."""
        leases = self.owned()
        if not leases:
            return {}
        replies = run_scripts(
            self.client, [(self._refresh, [lease.stream], [GROUP, self.consumer, lease.entry_id]) for lease in leases]
        )
        counts: dict[Ownership, int] = {}
        for lease, reply in zip(leases, replies, strict=True):
            if isinstance(reply, Exception):
                log.warning("keepalive of %s failed: %s", lease.describe(), reply)
                continue
            state = Ownership(text(reply))
            counts[state] = counts.get(state, 0) + 1
            if state in (Ownership.TAKEN, Ownership.DONE) and not lease.running:
                log.warning("entry %s is %s elsewhere; dropping it here", lease.describe(), state.value)
                self.release(lease)
            elif state is Ownership.TAKEN:
                log.warning(
                    "entry %s was taken over while it runs here (its job lock stops a second run)", lease.describe()
                )
        return counts

    def hand_back(self) -> int:
        """Give every waiting entry back to its lane as a new entry (a graceful stop: other workers need not wait
        claim_idle_ms for them). Each is forgotten here first, so it can no longer start here."""
        with self._lock:
            waiting = [lease for lease in self._owned.values() if not lease.running]
            for lease in waiting:
                del self._owned[(lease.stream, lease.entry_id)]
        handed = 0
        for lease in waiting:
            try:
                handed += self._requeue_one(lease)
            except redis.RedisError as exc:
                log.warning("could not hand %s back (%s); another worker takes it over later", lease.describe(), exc)
        return handed

    def _requeue_one(self, lease: Lease) -> int:
        if lease.payload is None:
            return 0
        if self._requeue(keys=[lease.stream], args=[GROUP, self.consumer, lease.entry_id, lease.payload]):
            log.info("handed %s back to its lane", lease.describe())
            return 1
        return 0
