"""Stage 2, scheduling: what runs next, in two steps.

1. Which owned entry the intake prepares next (`EntryPicker`): high is drained before normal before low, always.
   Within a lane, the waiting entries that are due (retries wait for their backoff) run oldest first, except that
   affinity (`Affinity`: the job's model is on the device already, no load or swap) may pick another among up to
   `lookahead` read-ahead entries; an entry passed over `max_skips` times runs next, so none waits forever. Stale
   entries of silent consumers are taken over at most once a second.
2. Which prepared jobs the device runs next, and together (`ReadyQueue`): the job of the highest lane first (oldest
   first within a lane) and, with it, the ready jobs of the same lane that can share its denoiser calls (the same
   batch key), up to `max_batch`: a batch is formed only from the lane being served. A batch that has room waits
   for the jobs of its lane the intake is still preparing (`company`: entries already read, due, not yet ready), so
   jobs that were waiting together run together; with `wait_s` > 0 it also waits that long for jobs not yet read.

The intake thread calls step 1 and puts into step 2; the device thread takes from step 2. Lease state changes only
through the lease registry (worker.queue.leases).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from models.catalog import Catalog
from models.pool import ModelPool
from models.resolution import choose_model
from npc_video_client.names import LANES_BY_PRIORITY, Lane
from worker.payload import read_job
from worker.queue.leases import Lease, Leases

log = logging.getLogger(__name__)

Prefer = Callable[[Lease], bool]  # run this one before the older ones?
TAKE_OVER_SCAN_S = 1.0
REMEMBERED_MODELS = 256
STOP_POLL_S = 0.1
COMPANY_POLL_S = 0.01  # the intake may end an entry without putting it (a duplicate, a refused payload)
COMPANY_WAIT_S = 0.5  # the most a batch waits for entries the intake is preparing (a slow image fetch, say)


# -- 1. which owned entry is prepared next --------------------------------------------------------------------
class Affinity:
    """Prefer a waiting job whose model needs no load or swap now."""

    def __init__(self, catalog: Catalog, pool: ModelPool, max_job_bytes: int) -> None:
        self.catalog = catalog
        self.pool = pool
        self.max_job_bytes = max_job_bytes
        self._models: OrderedDict[int, str | None] = OrderedDict()

    def prefers(self, lease: Lease) -> bool:
        model = self.model_of(lease)
        return model is not None and self.pool.is_ready(model)

    def model_of(self, lease: Lease) -> str | None:
        """The model a waiting entry will run on, remembered per lease: waiting entries are looked at on every
        pick, and their payloads (base images included) can be megabytes of JSON. Never raises: an entry that
        cannot be read or resolved has no model here, and its own run reports why."""
        key = id(lease)
        if key not in self._models:
            read = read_job(lease.payload, "unknown", self.max_job_bytes)
            try:
                model = choose_model(read.envelope.params, self.catalog) if read.envelope else None
            except Exception:
                model = None
            self._models[key] = model
            while len(self._models) > REMEMBERED_MODELS:
                self._models.popitem(last=False)
        return self._models[key]


def _entry_order(lease: Lease) -> tuple[float, int, int]:
    millis, _, sequence = lease.entry_id.partition("-")
    return (lease.due, int(millis or 0), int(sequence or 0))


class EntryPicker:
    def __init__(
        self,
        leases: Leases,
        *,
        block_ms: int,
        lookahead: int = 1,
        max_skips: int = 3,
        prefer: Prefer | None = None,
    ) -> None:
        self.leases = leases
        self.block_ms = block_ms
        self.lookahead = lookahead
        self.max_skips = max_skips
        self.prefer = prefer
        self._last_scan = float("-inf")
        self._quiet_until = float("-inf")

    def hold_take_overs(self) -> None:
        """Redis was unreachable: every entry looks idle now, its owner alive or not. Take nothing over for one
        claim_idle_ms, so the owners' keepalives refresh what is still theirs first."""
        self._quiet_until = time.monotonic() + self.leases.claim_idle_ms / 1000

    def next_lease(self) -> Lease | None:
        """The next entry to run (marked running), or None after waiting up to block_ms with nothing to do."""
        self._take_over_stale()
        for lane in LANES_BY_PRIORITY:
            chosen = self._pick(lane)
            if chosen is None and self.leases.read_new([lane], count=self.lookahead, block_ms=None):
                chosen = self._pick(lane)
            if chosen is not None:
                return chosen
        self.leases.read_new(list(LANES_BY_PRIORITY), count=1, block_ms=self._block_ms())
        for lane in LANES_BY_PRIORITY:
            chosen = self._pick(lane)
            if chosen is not None:
                return chosen
        return None

    def _block_ms(self) -> int:
        """Block no longer than until the next waiting entry falls due (a retry)."""
        dues = [lease.due for lease in self.leases.waiting() if lease.due > 0]
        if not dues:
            return self.block_ms
        until_due_ms = int((min(dues) - time.monotonic()) * 1000)
        return max(1, min(self.block_ms, until_due_ms))

    def _take_over_stale(self) -> None:
        """At most one scan a second (or per quarter of claim_idle_ms), up to `lookahead` entries per lane."""
        now = time.monotonic()
        if now < self._quiet_until or now - self._last_scan < min(TAKE_OVER_SCAN_S, self.leases.claim_idle_ms / 4000):
            return
        self._last_scan = now
        for lane in LANES_BY_PRIORITY:
            self.leases.take_over(lane, self.lookahead)

    def _pick(self, lane: Lane) -> Lease | None:
        now = time.monotonic()
        due = sorted(
            (lease for lease in self.leases.waiting() if lease.lane == lane and lease.due <= now), key=_entry_order
        )
        if not due:
            return None
        chosen = next((lease for lease in due if lease.skips >= self.max_skips), None)
        if chosen is None and self.prefer is not None and len(due) > 1:
            chosen = next((lease for lease in due if self.prefer(lease)), None)
        chosen = chosen or due[0]
        return chosen if self.leases.start(chosen, passed_over=due[: due.index(chosen)]) else None


# -- 2. which prepared jobs the device runs next, and together ----------------------------------------------------
class Schedulable(Protocol):
    @property
    def priority(self) -> int: ...  # the lane's: 0 is high

    @property
    def batch_key(self) -> Hashable | None: ...  # None: runs alone


T = TypeVar("T", bound=Schedulable)


@dataclass(eq=False)
class _Waiting(Generic[T]):
    item: T
    order: int = field(default_factory=itertools.count().__next__)


class ReadyQueue(Generic[T]):
    """Prepared jobs waiting for the device, at most `capacity` of them (the intake waits for room)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._waiting: list[_Waiting[T]] = []
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._waiting)

    def put(self, item: T, stopping: Callable[[], bool]) -> bool:
        """Wait for room, then add; False (not added) when `stopping()` turns true while waiting."""
        with self._cond:
            while len(self._waiting) >= self.capacity:
                if stopping():
                    return False
                self._cond.wait(STOP_POLL_S)
            self._waiting.append(_Waiting(item))
            self._cond.notify_all()
            return True

    def take(
        self,
        max_batch: int,
        wait_s: float,
        timeout_s: float,
        company: Callable[[int], bool] | None = None,
    ) -> list[T]:
        """The next batch (possibly of one), or [] when nothing was ready within `timeout_s`. `company(priority)`:
        are jobs of that lane being prepared right now? A batch with room waits for them (at most COMPANY_WAIT_S)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._waiting:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            first = min(self._waiting, key=lambda waiting: (waiting.item.priority, waiting.order))
            started = time.monotonic()
            while True:
                batch = self._companions(first, max_batch)
                if len(batch) >= max_batch or first.item.batch_key is None:
                    break
                waited = time.monotonic() - started
                coming = (
                    company is not None
                    and len(self._waiting) < self.capacity  # else the intake waits for room: nothing more comes
                    and waited < COMPANY_WAIT_S
                    and company(first.item.priority)
                )
                if coming:
                    self._cond.wait(COMPANY_POLL_S)
                elif waited < wait_s:
                    self._cond.wait(wait_s - waited)
                else:
                    break
            for waiting in batch:
                self._waiting.remove(waiting)
            self._cond.notify_all()
            return [waiting.item for waiting in batch]

    def _companions(self, first: _Waiting[T], max_batch: int) -> list[_Waiting[T]]:
        if first.item.batch_key is None:
            return [first]
        same = sorted(
            (
                waiting
                for waiting in self._waiting
                if waiting.item.priority == first.item.priority and waiting.item.batch_key == first.item.batch_key
            ),
            key=lambda waiting: waiting.order,
        )
        return [first, *(waiting for waiting in same if waiting is not first)][:max_batch]

    def drain(self) -> list[T]:
        """Everything still waiting (a stop): the caller gives it back."""
        with self._cond:
            items, self._waiting = [waiting.item for waiting in self._waiting], []
            self._cond.notify_all()
            return items
