"""Queue figures read from Redis at scrape time, computed the way KEDA's redis-streams scaler computes them.

Depth per lane = the group's `lag` (entries not yet delivered to any consumer) + `pending` (delivered, not yet
acknowledged), both from XINFO GROUPS: the number an autoscaler divides by the lag per replica. The oldest age
is that of the oldest entry not yet acknowledged (pending, or the first one not yet delivered), from the time in
its entry id.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from npc_video_client.names import GROUP, LANES_BY_PRIORITY, StreamNames
from npc_video_client.protocol import text
from worker.metrics import QueueReading


def _millis(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def lane_depth(client: redis.Redis, stream: str) -> tuple[float, str | None]:
    """(lag + pending, the id of the oldest unacknowledged entry or None) of the group on one lane stream."""
    groups: Any = client.xinfo_groups(stream) if client.exists(stream) else []
    for group in groups:
        if text(group["name"]) != GROUP:
            continue
        lag = group.get("lag")
        if lag is None:  # Redis cannot tell after deletions inside the range: count what follows the cursor
            after: Any = client.xrange(stream, min=f"({text(group['last-delivered-id'])}", max="+")
            lag = len(after)
        pending = int(group.get("pending") or 0)
        oldest: list[str] = []
        if pending:
            summary: Any = client.xpending(stream, GROUP)
            oldest.append(text(summary["min"]))
        if lag:
            first: Any = client.xrange(stream, min=f"({text(group['last-delivered-id'])}", max="+", count=1)
            if first:
                oldest.append(text(first[0][0]))
        return float(int(lag) + pending), min(oldest, key=_millis) if oldest else None
    return 0.0, None


def read_queue(client: redis.Redis, names: StreamNames) -> QueueReading:
    now_ms = time.time() * 1000
    depth: dict[str, float] = {}
    oldest: dict[str, float] = {}
    for lane in LANES_BY_PRIORITY:
        count, oldest_id = lane_depth(client, names.lane(lane))
        depth[lane.value] = count
        oldest[lane.value] = max(0.0, (now_ms - _millis(oldest_id)) / 1000) if oldest_id else 0.0
    dead = float(client.xlen(names.dead))
    return QueueReading(depth=depth, oldest_pending_s=oldest, dead_letters=dead)
