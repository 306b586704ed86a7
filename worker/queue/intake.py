"""Which owned entry runs next: lanes by priority, retries when due, affinity with a bounded wait.

High is drained before normal before low, always. Within a lane, the waiting entries that are due run oldest
first, except that `prefer` (affinity: the job's model is already on the device) may pick another among up to
`lookahead` read-ahead entries; an entry passed over `max_skips` times runs next, so none waits forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from npc_video_client.names import LANES_BY_PRIORITY, Lane
from worker.queue.leases import Lease, Leases

log = logging.getLogger(__name__)

Prefer = Callable[[Lease], bool]  # run this one before the older ones?
TAKE_OVER_SCAN_S = 1.0


def _entry_order(lease: Lease) -> tuple[float, int, int]:
    millis, _, sequence = lease.entry_id.partition("-")
    return (lease.due, int(millis or 0), int(sequence or 0))


class Intake:
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
        for passed in due[: due.index(chosen)]:
            passed.skips += 1
        return chosen if self.leases.start(chosen) else None
