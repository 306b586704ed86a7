"""JobStream against a real redis-server: lane priority, affinity with bounded look-ahead, bookkeeping."""

from __future__ import annotations

import json

from npc_video_client.names import GROUP, StreamNames

from tests.support.streams import create_groups
from worker.queue.streams import JobStream


def _submit(client, names: StreamNames, lane: str, job_id: str) -> None:
    client.xadd(names.lane(lane), {"job": json.dumps({"job_id": job_id})})


def _drain(stream: JobStream) -> list[str]:
    order = []
    while (entry := stream.next_entry()) is not None:
        order.append(json.loads(entry.payload)["job_id"])
        stream.client.xack(entry.stream, GROUP, entry.entry_id)
    return order


def _stream(client, names, **options) -> JobStream:
    stream = JobStream(client, names, "c1", claim_idle_ms=60_000, block_ms=10, **options)
    stream.ensure_groups()
    return stream


def test_affinity_prefers_resident_model_but_bounds_the_wait(redis_client, names):
    create_groups(redis_client, names)
    for job_id in ("slow1", "fast1", "slow2", "fast2", "slow3"):
        _submit(redis_client, names, "normal", job_id)
    stream = _stream(
        redis_client, names, prefer=lambda _entry_id, payload: b"fast" in payload, lookahead=4, max_skips=1
    )
    assert _drain(stream) == ["fast1", "slow1", "fast2", "slow2", "slow3"]


def test_without_affinity_entries_run_in_stream_order(redis_client, names):
    for job_id in ("a", "b", "c"):
        _submit(redis_client, names, "low", job_id)
    stream = _stream(redis_client, names)
    assert _drain(stream) == ["a", "b", "c"]


def test_high_lane_entries_overtake_held_lower_lane_entries(redis_client, names):
    stream = _stream(redis_client, names, prefer=lambda _entry_id, _payload: False, lookahead=3)
    for job_id in ("n1", "n2", "n3"):
        _submit(redis_client, names, "normal", job_id)
    first = stream.next_entry()
    stream.client.xack(first.stream, GROUP, first.entry_id)
    _submit(redis_client, names, "high", "h1")
    assert _drain(stream) == ["h1", "n2", "n3"]


def test_first_delivery_is_attempt_one_and_a_retry_is_attempt_two(redis_client, names):
    stream = _stream(redis_client, names)
    _submit(redis_client, names, "normal", "r")
    entry = stream.next_entry()
    assert entry.attempt == 1
    stream.retry_later(entry, delay_s=0)
    again = stream.next_entry()
    assert (again.entry_id, again.attempt) == (entry.entry_id, 2)


def test_keepalive_never_takes_an_entry_back_from_its_new_owner(redis_client, names):
    stream = _stream(redis_client, names)
    _submit(redis_client, names, "normal", "k")
    entry = stream.next_entry()
    redis_client.xclaim(entry.stream, GROUP, "other", 0, [entry.entry_id])
    stream.keepalive([entry])
    owner = redis_client.xpending_range(entry.stream, GROUP, min="-", max="+", count=1)[0]["consumer"]
    assert owner == b"other"
