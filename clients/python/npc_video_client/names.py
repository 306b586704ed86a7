"""Every Redis key and stream name of the contract (docs/contract.md, section 3), under one configurable prefix.

Importable without torch: the producer client uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

GROUP = "npc-workers"


class Lane(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    WARM = "warm"  # 1.2: pre-generation, run only while no other lane has a job (docs/contract.md, section 3b)


LANES_BY_PRIORITY = (Lane.HIGH, Lane.NORMAL, Lane.LOW)  # the lanes of real jobs, highest first
ALL_LANES = (*LANES_BY_PRIORITY, Lane.WARM)  # every lane a worker consumes, in the order it serves them


@dataclass(frozen=True)
class StreamNames:
    prefix: str = "npc"

    def lane(self, lane: Lane | str) -> str:
        return f"{self.prefix}:jobs:{Lane(lane).value}"

    @property
    def lanes(self) -> list[str]:
        return [self.lane(lane) for lane in LANES_BY_PRIORITY]

    @property
    def all_lanes(self) -> list[str]:
        """The real lanes and the warm lane."""
        return [self.lane(lane) for lane in ALL_LANES]

    def lane_of(self, stream: str) -> Lane:
        """The lane of a lane stream's key (the warm lane's too); ValueError for any other key."""
        for lane in ALL_LANES:
            if self.lane(lane) == stream:
                return lane
        raise ValueError(f'{stream} is not a lane stream of prefix "{self.prefix}"')

    @property
    def dead(self) -> str:
        return f"{self.prefix}:jobs:dead"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    def result(self, job_id: str) -> str:
        return f"{self.prefix}:result:{job_id}"

    def cancel(self, job_id: str) -> str:
        return f"{self.prefix}:cancel:{job_id}"

    def done(self, job_id: str) -> str:
        """The job's completion list: the worker pushes the final result here (with a TTL), so a client can block
        on this one key (BLPOP / BLMOVE) instead of scanning the events stream."""
        return f"{self.prefix}:done:{job_id}"

    def attempts(self, job_id: str) -> str:
        """The worker's count of runs started for a job (its attempt number); deleted by the final write."""
        return f"{self.prefix}:attempts:{job_id}"

    def running(self, job_id: str) -> str:
        """The job lock: which run holds the job now (expires unless its worker keeps it alive)."""
        return f"{self.prefix}:running:{job_id}"

    @property
    def warm_index(self) -> str:
        """Warmed videos by storage key, scored by their last use (unix ms): the warm cache's LRU (1.2)."""
        return f"{self.prefix}:warm:index"

    @property
    def warm_sizes(self) -> str:
        """Bytes each warmed video (and its poster) takes in storage, by storage key (1.2)."""
        return f"{self.prefix}:warm:sizes"

    @property
    def warm_ready(self) -> str:
        """Warm job id -> the storage key of its video, for `warm_status` (1.2)."""
        return f"{self.prefix}:warm:ready"

    def state(self, job_id: str) -> str:
        """The per-job state (contract 1.2): a small JSON string a producer polls, with the result's TTL."""
        return f"{self.prefix}:state:{job_id}"
