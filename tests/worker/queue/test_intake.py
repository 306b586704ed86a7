"""worker.queue.intake against a real redis-server: lane priority, affinity with bounded skips, retries, take-over."""

from __future__ import annotations

import time

from npc_video_client.names import GROUP, Lane
from worker.queue.intake import Intake, Prefer
from worker.queue.leases import Lease, Leases


def make_intake(
    redis_client, names, *, block_ms: int = 10, claim_idle_ms: int = 60_000, **options
) -> tuple[Intake, Leases]:
    leases = Leases(redis_client, names, "c1", claim_idle_ms)
    leases.ensure_groups()
    return Intake(leases, block_ms=block_ms, **options), leases


def submit(redis_client, names, lane: str, job: str) -> str:
    return redis_client.xadd(names.lane(lane), {"job": job}).decode()


def finish(redis_client, leases: Leases, lease: Lease) -> None:
    """What the terminal write does to the entry, and what the service does to the lease."""
    redis_client.xack(lease.stream, GROUP, lease.entry_id)
    leases.release(lease)


def drain(redis_client, intake: Intake, leases: Leases) -> list[str]:
    order = []
    while (lease := intake.next_lease()) is not None:
        assert lease.running  # handed out marked running, so it is never handed out twice
        order.append(lease.payload.decode())
        finish(redis_client, leases, lease)
    return order


def test_high_before_normal_before_low(redis_client, names):
    intake, leases = make_intake(redis_client, names)
    for lane in ("low", "normal", "high", "low", "normal", "high"):
        submit(redis_client, names, lane, f"{lane}")
    assert drain(redis_client, intake, leases) == ["high", "high", "normal", "normal", "low", "low"]


def test_a_new_high_entry_overtakes_normal_entries_already_read_ahead(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=3)
    for index in range(3):
        submit(redis_client, names, "normal", f"n{index}")
    first = intake.next_lease()
    assert first is not None and first.payload == b"n0"
    assert len(leases.waiting()) == 2  # n1, n2 read ahead
    finish(redis_client, leases, first)
    submit(redis_client, names, "high", "h0")
    assert drain(redis_client, intake, leases) == ["h0", "n1", "n2"]


def test_without_a_preference_entries_run_oldest_first(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=4)
    for job in ("a", "b", "c", "d", "e"):
        submit(redis_client, names, "low", job)
    assert drain(redis_client, intake, leases) == ["a", "b", "c", "d", "e"]


def prefers_fast() -> Prefer:
    return lambda lease: lease.payload is not None and lease.payload.startswith(b"fast")


def test_affinity_prefers_a_matching_entry_and_bounds_the_skips(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=4, max_skips=1, prefer=prefers_fast())
    for job in ("slow1", "fast1", "slow2", "fast2", "slow3"):
        submit(redis_client, names, "normal", job)
    assert drain(redis_client, intake, leases) == ["fast1", "slow1", "fast2", "slow2", "slow3"]


def test_affinity_looks_no_further_than_lookahead(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=2, max_skips=5, prefer=prefers_fast())
    for job in ("slow1", "slow2", "fast1"):
        submit(redis_client, names, "normal", job)
    first = intake.next_lease()
    assert first is not None and first.payload == b"slow1"  # fast1 was beyond the two entries read ahead
    assert [lease.payload for lease in leases.waiting()] == [b"slow2"]


def test_an_entry_passed_over_max_skips_times_runs_next(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=8, max_skips=2, prefer=prefers_fast())
    for job in ("slow", "fast1", "fast2", "fast3", "fast4"):
        submit(redis_client, names, "normal", job)
    order = drain(redis_client, intake, leases)
    assert order == ["fast1", "fast2", "slow", "fast3", "fast4"]


def test_a_retry_is_not_picked_before_it_is_due(redis_client, names):
    intake, _leases = make_intake(redis_client, names, block_ms=50)
    submit(redis_client, names, "normal", "retry me")
    lease = intake.next_lease()
    assert lease is not None
    lease.running, lease.due = False, time.monotonic() + 0.8  # what a failed attempt with backoff does
    assert intake.next_lease() is None
    assert intake.next_lease() is None
    assert time.monotonic() < lease.due, "the machine was too slow for this test's timing"
    time.sleep(lease.due - time.monotonic() + 0.01)
    assert intake.next_lease() is lease


def test_the_blocking_read_waits_no_longer_than_until_a_retry_is_due(redis_client, names):
    intake, _leases = make_intake(redis_client, names, block_ms=10_000)
    submit(redis_client, names, "normal", "retry me")
    lease = intake.next_lease()
    assert lease is not None
    lease.running, lease.due = False, time.monotonic() + 0.4
    started = time.monotonic()
    again = intake.next_lease()
    waited = time.monotonic() - started
    assert again is lease and lease.running
    assert 0.3 <= waited < 3.0, waited  # blocked until due, not for block_ms (10 s)


def test_a_due_retry_runs_before_newer_entries_of_its_lane(redis_client, names):
    intake, leases = make_intake(redis_client, names, lookahead=1)
    submit(redis_client, names, "normal", "first")
    lease = intake.next_lease()
    assert lease is not None
    lease.running, lease.due = False, time.monotonic() + 0.2
    submit(redis_client, names, "normal", "second")
    newer = intake.next_lease()
    assert newer is not None and newer.payload == b"second"  # the retry is not due yet
    finish(redis_client, leases, newer)
    time.sleep(0.25)
    assert intake.next_lease() is lease


def test_stale_entries_of_a_dead_consumer_are_taken_over(redis_client, names):
    intake, _leases = make_intake(redis_client, names, claim_idle_ms=600)
    orphan = submit(redis_client, names, "low", "orphan")
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("low"): ">"}, count=1)
    assert intake.next_lease() is None  # not idle long enough yet
    time.sleep(0.7)
    lease = intake.next_lease()
    assert lease is not None and (lease.entry_id, lease.origin, lease.lane) == (orphan, "take-over", Lane.LOW)
    owner = redis_client.xpending_range(names.lane("low"), GROUP, min="-", max="+", count=1)[0]["consumer"]
    assert owner == b"c1"


def test_nothing_to_do_returns_none_after_blocking(redis_client, names):
    intake, _leases = make_intake(redis_client, names, block_ms=200)
    started = time.monotonic()
    assert intake.next_lease() is None
    assert time.monotonic() - started >= 0.15
