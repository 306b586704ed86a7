"""worker.queue.depth against a real redis-server: the figures KEDA's redis-streams scaler reads (XINFO GROUPS lag +
pending) and the age of the oldest unacknowledged entry."""

from __future__ import annotations

import time
from typing import Any

import pytest

from npc_video_client.names import GROUP
from tests.support.streams import create_groups
from worker.queue.depth import lane_depth, read_queue


def add_aged(redis_client, stream: str, ages_s: list[float]) -> list[str]:
    """Entries whose ids carry the time they were added `age` seconds ago (oldest first)."""
    now_ms = int(time.time() * 1000)
    return [redis_client.xadd(stream, {"job": "x"}, id=f"{now_ms - int(age * 1000)}-0").decode() for age in ages_s]


def xinfo_depth(redis_client, stream: str) -> int:
    """lag + pending straight from XINFO GROUPS, as the autoscaler computes it."""
    groups: Any = redis_client.xinfo_groups(stream)
    (group,) = [group for group in groups if group["name"] == GROUP.encode()]
    return int(group["lag"]) + int(group["pending"])


def test_depth_is_lag_plus_pending_and_the_oldest_is_the_oldest_pending(redis_client, names):
    stream = names.lane("normal")
    create_groups(redis_client, names)
    first, second, *_ = add_aged(redis_client, stream, [30, 20, 10, 5])
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=2)
    redis_client.xack(stream, GROUP, first)
    depth, oldest = lane_depth(redis_client, stream)
    assert depth == xinfo_depth(redis_client, stream) == 3  # second pending, two never delivered
    assert oldest == second
    reading = read_queue(redis_client, names)
    assert reading.depth == {"high": 0.0, "normal": 3.0, "low": 0.0}
    assert reading.oldest_pending_s["normal"] == pytest.approx(20, abs=2)
    assert reading.oldest_pending_s["high"] == reading.oldest_pending_s["low"] == 0.0


def test_with_nothing_pending_the_oldest_is_the_first_entry_not_yet_delivered(redis_client, names):
    stream = names.lane("high")
    create_groups(redis_client, names)
    first, second, third = add_aged(redis_client, stream, [40, 15, 3])
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=1)
    redis_client.xack(stream, GROUP, first)
    depth, oldest = lane_depth(redis_client, stream)
    assert (depth, oldest) == (xinfo_depth(redis_client, stream), second) == (2, second)
    assert read_queue(redis_client, names).oldest_pending_s["high"] == pytest.approx(15, abs=2)
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=5)
    for entry in (second, third):
        redis_client.xack(stream, GROUP, entry)
    assert lane_depth(redis_client, stream) == (0.0, None)


def test_acknowledged_and_deleted_entries_do_not_count(redis_client, names):
    stream = names.lane("low")
    create_groups(redis_client, names)
    entries = add_aged(redis_client, stream, [9, 8, 7])
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=3)
    for entry in entries:  # what the terminal write does: XACK + XDEL
        redis_client.xack(stream, GROUP, entry)
        redis_client.xdel(stream, entry)
    assert lane_depth(redis_client, stream) == (0.0, None) and xinfo_depth(redis_client, stream) == 0


def test_an_entry_deleted_before_delivery_is_not_counted_when_redis_cannot_tell_the_lag(redis_client, names):
    stream = names.lane("normal")
    create_groups(redis_client, names)
    entries = add_aged(redis_client, stream, [12, 11, 10, 9])
    redis_client.xreadgroup(GROUP, "c1", {stream: ">"}, count=1)
    redis_client.xdel(stream, entries[2])  # a tombstone after the group's cursor
    groups: Any = redis_client.xinfo_groups(stream)
    assert groups[0]["lag"] is None  # what makes KEDA's figure unknown here
    depth, oldest = lane_depth(redis_client, stream)
    remaining: Any = redis_client.xrange(stream, min=f"({entries[0]}", max="+")
    assert depth == 1 + len(remaining) == 3  # one pending + the two entries still to deliver
    assert oldest == entries[0]


def test_a_lane_without_stream_or_group_is_empty(redis_client, names):
    assert lane_depth(redis_client, names.lane("high")) == (0.0, None)
    redis_client.xadd(names.lane("low"), {"job": "before any group"})
    assert lane_depth(redis_client, names.lane("low")) == (0.0, None)


def test_read_queue_counts_dead_letters(redis_client, names):
    for _ in range(3):
        redis_client.xadd(names.dead, {"job": "x", "error": "{}"})
    reading = read_queue(redis_client, names)
    assert reading.dead_letters == 3.0
    assert reading.depth == {"high": 0.0, "normal": 0.0, "low": 0.0}
