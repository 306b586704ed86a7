"""Job entries on the lane streams: priority reads, take-over of dead consumers' entries, keepalive, ack.

Delivery is at-least-once: an entry stays in the consumer group's pending list until it is acknowledged,
which happens only after its result and final event are written. The delivery count Redis keeps per
pending entry is the job's attempt number.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from npc_video_client.names import GROUP, LANES_BY_PRIORITY, Lane, StreamNames

log = logging.getLogger(__name__)

# Refresh an entry's idle time only while this consumer still owns it (never steal it back).
_KEEPALIVE_SCRIPT = """
local info = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #info == 0 or info[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""


@dataclass(frozen=True)
class Entry:
    lane: Lane
    stream: str
    entry_id: str
    fields: dict[bytes, bytes]
    attempt: int

    @property
    def payload(self) -> bytes | None:
        return self.fields.get(b"job")


@dataclass(eq=False)  # identity equality: list.remove must remove this very entry
class _Held:
    """An entry this consumer owns but is not running: read in a batch, or waiting to be retried."""

    due: float
    priority: int
    entry_id: str
    lane: Lane
    fields: dict[bytes, bytes] | None = None
    skips: int = 0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


Prefer = Callable[[str, bytes | None], bool]  # (entry id, job payload) -> run this one first?


class JobStream:
    """`prefer` (affinity): among up to `lookahead` waiting entries of a lane, run first one it likes
    (e.g. one for the model already on the device); an entry passed over `max_skips` times runs next,
    so none waits forever."""

    def __init__(
        self,
        client: redis.Redis,
        names: StreamNames,
        consumer: str,
        claim_idle_ms: int,
        block_ms: int,
        *,
        prefer: Prefer | None = None,
        lookahead: int = 1,
        max_skips: int = 3,
    ) -> None:
        self.prefer = prefer
        self.lookahead = lookahead
        self.max_skips = max_skips
        self.client = client
        self.names = names
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self._held: list[_Held] = []
        self._held_lock = threading.Lock()  # the finisher thread schedules retries while the loop reads
        self._last_claim_scan = 0.0
        self._keepalive = client.register_script(_KEEPALIVE_SCRIPT)

    # -- set-up -----------------------------------------------------------------------------------------
    def ensure_groups(self) -> None:
        """Create the group on every lane (MKSTREAM; from id 0 so jobs enqueued before any worker count)."""
        for stream in self.names.lanes:
            try:
                self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def recover_own_pending(self) -> int:
        """Entries this consumer name held when its previous process died: they run first, in lane order."""
        recovered = 0
        for priority, lane in enumerate(LANES_BY_PRIORITY):
            pending: Any = self.client.xpending_range(
                self.names.lane(lane), GROUP, min="-", max="+", count=1000, consumername=self.consumer
            )
            for item in pending:
                self._hold(_Held(0.0, priority, _text(item["message_id"]), lane))
                recovered += 1
        return recovered

    # -- taking the next entry --------------------------------------------------------------------------
    def next_entry(self) -> Entry | None:
        """The next entry to run, high lane before normal before low; blocks up to block_ms when idle."""
        self._claim_stale_entries()
        now = time.monotonic()
        for priority, lane in enumerate(LANES_BY_PRIORITY):
            held = self._take_held(priority, now)
            if held is not None:
                return held
            fresh = self._read({self.names.lane(lane): ">"}, block_ms=None, count=self.lookahead)
            if len(fresh) > 1:  # a choice: hold them all and pick by affinity
                for entry in fresh:
                    self._hold(_Held(0.0, priority, entry.entry_id, lane, entry.fields))
                held = self._take_held(priority, now)
                if held is not None:
                    return held
            elif fresh:
                return fresh[0]
        fresh = self._read({stream: ">" for stream in self.names.lanes}, block_ms=self.block_ms)
        for extra in fresh[1:]:  # arrived together: keep them, in lane order, for the next calls
            self._hold(_Held(0.0, LANES_BY_PRIORITY.index(extra.lane), extra.entry_id, extra.lane, extra.fields))
        return fresh[0] if fresh else None

    def _read(self, streams: dict[str, str], block_ms: int | None, count: int = 1) -> list[Entry]:
        request: Any = streams
        response: Any = self.client.xreadgroup(GROUP, self.consumer, request, count=count, block=block_ms)
        entries = []
        for stream_name, items in response or []:
            stream = _text(stream_name)
            lane = self._lane_of(stream)
            for entry_id, fields in items:
                entries.append(Entry(lane, stream, _text(entry_id), dict(fields or {}), attempt=1))
        entries.sort(key=lambda entry: LANES_BY_PRIORITY.index(entry.lane))
        return entries

    def _take_held(self, priority: int, now: float) -> Entry | None:
        while (held := self._pop_due(priority, now)) is not None:
            stream = self.names.lane(held.lane)
            if held.fields is not None:
                return Entry(held.lane, stream, held.entry_id, held.fields, self.delivery_count(stream, held.entry_id))
            claimed: Any = self.client.xclaim(stream, GROUP, self.consumer, 0, [held.entry_id])
            if not claimed or claimed[0][1] is None:  # deleted from the stream meanwhile
                self.client.xack(stream, GROUP, held.entry_id)
                continue
            entry_id, fields = claimed[0]
            return Entry(held.lane, stream, _text(entry_id), dict(fields), self.delivery_count(stream, held.entry_id))
        return None

    def _claim_stale_entries(self) -> None:
        """Take over entries of consumers that stopped (idle past claim_idle_ms); at most a scan a second."""
        now = time.monotonic()
        if now - self._last_claim_scan < min(1.0, self.claim_idle_ms / 4000):
            return
        self._last_claim_scan = now
        with self._held_lock:
            held_ids = {held.entry_id for held in self._held}
        for priority, lane in enumerate(LANES_BY_PRIORITY):
            stream = self.names.lane(lane)
            response: Any = self.client.xautoclaim(
                stream, GROUP, self.consumer, self.claim_idle_ms, start_id="0-0", count=10
            )
            claimed = response[1]
            for entry_id, fields in claimed:
                if fields is None or _text(entry_id) in held_ids:
                    continue
                log.warning("took over entry %s of %s after %d ms idle", _text(entry_id), stream, self.claim_idle_ms)
                self._hold(_Held(0.0, priority, _text(entry_id), lane, dict(fields)))

    # -- bookkeeping --------------------------------------------------------------------------------------
    def delivery_count(self, stream: str, entry_id: str) -> int:
        pending: Any = self.client.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def retry_later(self, entry: Entry, delay_s: float) -> None:
        """Keep the entry pending and run it again after the delay (a new delivery: attempt + 1)."""
        self._hold(_Held(time.monotonic() + delay_s, LANES_BY_PRIORITY.index(entry.lane), entry.entry_id, entry.lane))

    def _hold(self, held: _Held) -> None:
        with self._held_lock:
            self._held.append(held)
            self._held.sort(key=lambda held: (held.due, held.priority))

    def _pop_due(self, priority: int, now: float) -> _Held | None:
        """The next due entry of a lane: one skipped too often, else a preferred one, else the oldest."""
        with self._held_lock:
            due = [held for held in self._held if held.priority == priority and held.due <= now]
            if not due:
                return None
            chosen = next((held for held in due if held.skips >= self.max_skips), None)
            if chosen is None and self.prefer is not None and len(due) > 1:
                chosen = next(
                    (
                        held
                        for held in due
                        if held.fields is not None and self.prefer(held.entry_id, held.fields.get(b"job"))
                    ),
                    None,
                )
            chosen = chosen or due[0]
            for held in due[: due.index(chosen)]:
                held.skips += 1
            self._held.remove(chosen)
            return chosen

    def held_entries(self) -> list[Entry]:
        """Entries owned here and waiting to run (kept alive like the running one, retries excepted)."""
        with self._held_lock:
            return [
                Entry(held.lane, self.names.lane(held.lane), held.entry_id, held.fields, 0)
                for held in self._held
                if held.fields is not None
            ]

    def keepalive(self, entries: list[Entry]) -> None:
        """Reset the idle time of entries still running here, so no other worker takes them over."""
        for entry in entries:
            if not self._keepalive(keys=[entry.stream], args=[GROUP, self.consumer, entry.entry_id]):
                log.warning("entry %s of %s is no longer owned by %s", entry.entry_id, entry.stream, self.consumer)

    def ack(self, pipe: Any, entry: Entry) -> None:
        pipe.xack(entry.stream, GROUP, entry.entry_id)

    def dead_letter(self, pipe: Any, entry: Entry, error_json: str) -> None:
        fields = {"job": entry.payload or b"", "error": error_json, "source": f"{entry.stream}/{entry.entry_id}"}
        pipe.xadd(self.names.dead, fields)

    def _lane_of(self, stream: str) -> Lane:
        for lane in LANES_BY_PRIORITY:
            if self.names.lane(lane) == stream:
                return lane
        raise ValueError(f"{stream} is not a lane stream")
