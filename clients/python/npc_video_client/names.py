"""Every Redis key and stream name of the contract (CONTRACT.md section 3), under one configurable prefix.

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


LANES_BY_PRIORITY = (Lane.HIGH, Lane.NORMAL, Lane.LOW)


@dataclass(frozen=True)
class StreamNames:
    prefix: str = "npc"

    def lane(self, lane: Lane | str) -> str:
        return f"{self.prefix}:jobs:{Lane(lane).value}"

    @property
    def lanes(self) -> list[str]:
        return [self.lane(lane) for lane in LANES_BY_PRIORITY]

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
