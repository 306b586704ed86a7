"""worker.scheduling: which owned entry is prepared next (against a real redis-server: lane priority, affinity
with bounded skips, retries, take-over) and which ready jobs the device runs next (lane order, batches of one lane
and one key, waiting for company being prepared, or when asked, room for at most `capacity` prepared jobs)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from npc_video_client.names import GROUP, Lane
from worker.queue.leases import Lease, Leases
from worker.scheduling import COMPANY_WAIT_S, EntryPicker, Prefer, ReadyQueue


# -- which owned entry is prepared next ----------------------------------------------------------------------
def make_picker(
    redis_client, names, *, block_ms: int = 10, claim_idle_ms: int = 60_000, **options
) -> tuple[EntryPicker, Leases]:
    leases = Leases(redis_client, names, "c1", claim_idle_ms)
    leases.ensure_groups()
    return EntryPicker(leases, block_ms=block_ms, **options), leases


def submit(redis_client, names, lane: str, job: str) -> str:
    return redis_client.xadd(names.lane(lane), {"job": job}).decode()


def finish(redis_client, leases: Leases, lease: Lease) -> None:
    """What the terminal write does to the entry, and what the service does to the lease."""
    redis_client.xack(lease.stream, GROUP, lease.entry_id)
    leases.release(lease)


def drain_entries(redis_client, picker: EntryPicker, leases: Leases) -> list[str]:
    order = []
    while (lease := picker.next_lease()) is not None:
        assert lease.running  # handed out marked running, so it is never handed out twice
        order.append(lease.payload.decode())
        finish(redis_client, leases, lease)
    return order


def test_high_before_normal_before_low(redis_client, names):
    picker, leases = make_picker(redis_client, names)
    for lane in ("low", "normal", "high", "low", "normal", "high"):
        submit(redis_client, names, lane, f"{lane}")
    assert drain_entries(redis_client, picker, leases) == ["high", "high", "normal", "normal", "low", "low"]


def test_a_new_high_entry_overtakes_normal_entries_already_read_ahead(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=3)
    for index in range(3):
        submit(redis_client, names, "normal", f"n{index}")
    first = picker.next_lease()
    assert first is not None and first.payload == b"n0"
    assert len(leases.waiting()) == 2  # n1, n2 read ahead
    finish(redis_client, leases, first)
    submit(redis_client, names, "high", "h0")
    assert drain_entries(redis_client, picker, leases) == ["h0", "n1", "n2"]


def test_without_a_preference_entries_run_oldest_first(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=4)
    for job in ("a", "b", "c", "d", "e"):
        submit(redis_client, names, "low", job)
    assert drain_entries(redis_client, picker, leases) == ["a", "b", "c", "d", "e"]


def prefers_fast() -> Prefer:
    return lambda lease: lease.payload is not None and lease.payload.startswith(b"fast")


def test_affinity_prefers_a_matching_entry_and_bounds_the_skips(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=4, max_skips=1, prefer=prefers_fast())
    for job in ("slow1", "fast1", "slow2", "fast2", "slow3"):
        submit(redis_client, names, "normal", job)
    assert drain_entries(redis_client, picker, leases) == ["fast1", "slow1", "fast2", "slow2", "slow3"]


def test_affinity_looks_no_further_than_lookahead(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=2, max_skips=5, prefer=prefers_fast())
    for job in ("slow1", "slow2", "fast1"):
        submit(redis_client, names, "normal", job)
    first = picker.next_lease()
    assert first is not None and first.payload == b"slow1"  # fast1 was beyond the two entries read ahead
    assert [lease.payload for lease in leases.waiting()] == [b"slow2"]


def test_an_entry_passed_over_max_skips_times_runs_next(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=8, max_skips=2, prefer=prefers_fast())
    for job in ("slow", "fast1", "fast2", "fast3", "fast4"):
        submit(redis_client, names, "normal", job)
    order = drain_entries(redis_client, picker, leases)
    assert order == ["fast1", "fast2", "slow", "fast3", "fast4"]


def test_a_retry_is_not_picked_before_it_is_due(redis_client, names):
    picker, leases = make_picker(redis_client, names, block_ms=50)
    submit(redis_client, names, "normal", "retry me")
    lease = picker.next_lease()
    assert lease is not None
    leases.retry_later(lease, 0.8, solo=False)  # what a failed attempt with backoff does
    assert picker.next_lease() is None
    assert picker.next_lease() is None
    assert time.monotonic() < lease.due, "the machine was too slow for this test's timing"
    time.sleep(lease.due - time.monotonic() + 0.01)
    assert picker.next_lease() is lease


def test_the_blocking_read_waits_no_longer_than_until_a_retry_is_due(redis_client, names):
    picker, leases = make_picker(redis_client, names, block_ms=10_000)
    submit(redis_client, names, "normal", "retry me")
    lease = picker.next_lease()
    assert lease is not None
    leases.retry_later(lease, 0.4, solo=False)
    started = time.monotonic()
    again = picker.next_lease()
    waited = time.monotonic() - started
    assert again is lease and lease.running
    assert 0.3 <= waited < 3.0, waited  # blocked until due, not for block_ms (10 s)


def test_a_due_retry_runs_before_newer_entries_of_its_lane(redis_client, names):
    picker, leases = make_picker(redis_client, names, lookahead=1)
    submit(redis_client, names, "normal", "first")
    lease = picker.next_lease()
    assert lease is not None
    leases.retry_later(lease, 0.2, solo=False)
    submit(redis_client, names, "normal", "second")
    newer = picker.next_lease()
    assert newer is not None and newer.payload == b"second"  # the retry is not due yet
    finish(redis_client, leases, newer)
    time.sleep(0.25)
    assert picker.next_lease() is lease


def test_stale_entries_of_a_dead_consumer_are_taken_over(redis_client, names):
    picker, _leases = make_picker(redis_client, names, claim_idle_ms=600)
    orphan = submit(redis_client, names, "low", "orphan")
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("low"): ">"}, count=1)
    assert picker.next_lease() is None  # not idle long enough yet
    time.sleep(0.7)
    lease = picker.next_lease()
    assert lease is not None and (lease.entry_id, lease.origin, lease.lane) == (orphan, "take-over", Lane.LOW)
    owner = redis_client.xpending_range(names.lane("low"), GROUP, min="-", max="+", count=1)[0]["consumer"]
    assert owner == b"c1"


def test_nothing_to_do_returns_none_after_blocking(redis_client, names):
    picker, _leases = make_picker(redis_client, names, block_ms=200)
    started = time.monotonic()
    assert picker.next_lease() is None
    assert time.monotonic() - started >= 0.15


# -- which ready jobs run next, and together -------------------------------------------------------------------
NEVER = lambda: False  # noqa: E731 - a stop that is never asked


@dataclass(eq=False)
class Item:
    priority: int
    batch_key: str | None
    name: str


def job(priority: int, key: str | None, name: str) -> Item:
    return Item(priority, key, name)


def names(batch: list[Item]) -> list[str]:
    return [item.name for item in batch]


def filled(*jobs: Item, capacity: int = 8) -> ReadyQueue[Item]:
    queue = ReadyQueue(capacity)
    for item in jobs:
        assert queue.put(item, NEVER)
    return queue


def test_the_highest_lane_goes_first_and_the_oldest_within_a_lane():
    queue = filled(job(2, None, "low"), job(1, None, "normal-1"), job(0, None, "high"), job(1, None, "normal-2"))
    taken = [names(queue.take(max_batch=1, wait_s=0, timeout_s=1)) for _ in range(4)]
    assert taken == [["high"], ["normal-1"], ["normal-2"], ["low"]]


def test_a_batch_takes_only_jobs_of_the_same_lane_and_key_up_to_max_batch():
    queue = filled(
        job(1, "a", "n-a1"),
        job(0, "a", "h-a"),  # same key, other lane: not a companion of the normal lane's jobs
        job(1, "b", "n-b"),
        job(1, "a", "n-a2"),
        job(1, "a", "n-a3"),
        job(1, "a", "n-a4"),
    )
    assert names(queue.take(max_batch=3, wait_s=0, timeout_s=1)) == ["h-a"]
    assert names(queue.take(max_batch=3, wait_s=0, timeout_s=1)) == ["n-a1", "n-a2", "n-a3"]
    assert names(queue.take(max_batch=3, wait_s=0, timeout_s=1)) == ["n-b"]
    assert names(queue.take(max_batch=3, wait_s=0, timeout_s=1)) == ["n-a4"]
    assert len(queue) == 0


def test_a_job_without_a_key_runs_alone_and_never_waits():
    queue = filled(job(1, None, "alone"), job(1, None, "next"))
    started = time.monotonic()
    assert names(queue.take(max_batch=4, wait_s=5, timeout_s=1)) == ["alone"]
    assert time.monotonic() - started < 1


def test_by_default_a_lone_job_is_not_delayed():
    queue = filled(job(1, "a", "lone"))
    started = time.monotonic()
    assert names(queue.take(max_batch=4, wait_s=0, timeout_s=1)) == ["lone"]
    assert time.monotonic() - started < 1


def test_with_a_wait_a_lone_job_takes_a_companion_that_arrives_in_time():
    queue = filled(job(1, "a", "first"))
    later = threading.Timer(0.2, lambda: queue.put(job(1, "a", "second"), NEVER))
    later.start()
    started = time.monotonic()
    batch = queue.take(max_batch=2, wait_s=5, timeout_s=1)
    later.join()
    assert names(batch) == ["first", "second"]
    assert time.monotonic() - started < 4  # a full batch ends the wait


def test_the_wait_for_company_ends_with_what_came():
    queue = filled(job(1, "a", "first"))
    started = time.monotonic()
    assert names(queue.take(max_batch=4, wait_s=0.3, timeout_s=1)) == ["first"]
    assert time.monotonic() - started >= 0.3


def test_an_empty_queue_gives_nothing_after_the_timeout():
    started = time.monotonic()
    assert ReadyQueue[Item](2).take(max_batch=1, wait_s=0, timeout_s=0.2) == []
    assert time.monotonic() - started >= 0.2


def test_put_waits_for_room_and_gives_up_on_a_stop():
    queue = filled(job(1, None, "a"), capacity=1)
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert queue.put(job(1, None, "b"), stop.is_set) is False
    assert names(queue.drain()) == ["a"]

    queue = filled(job(1, None, "a"), capacity=1)
    threading.Timer(0.2, lambda: queue.take(max_batch=1, wait_s=0, timeout_s=1)).start()
    assert queue.put(job(1, None, "b"), NEVER) is True  # room made by the device taking "a"
    assert names(queue.drain()) == ["b"] and len(queue) == 0


def test_a_batch_with_room_waits_for_jobs_of_its_lane_being_prepared():
    queue = filled(job(1, "a", "first"))
    preparing = threading.Event()
    preparing.set()  # the intake holds entries of this lane already read: they will be ready in a moment

    def intake() -> None:
        for name in ("second", "third"):
            time.sleep(0.05)
            queue.put(job(1, "a", name), NEVER)
        preparing.clear()

    threading.Thread(target=intake).start()
    batch = queue.take(max_batch=4, wait_s=0, timeout_s=1, company=lambda _priority: preparing.is_set())
    assert names(batch) == ["first", "second", "third"]


def test_company_of_another_lane_or_a_full_queue_is_not_waited_for():
    queue = filled(job(1, "a", "first"))
    started = time.monotonic()
    batch = queue.take(max_batch=4, wait_s=0, timeout_s=1, company=lambda priority: priority == 0)
    assert names(batch) == ["first"]
    assert time.monotonic() - started < COMPANY_WAIT_S
    queue = filled(job(1, "a", "first"), job(1, "b", "other"), capacity=2)  # full: the intake waits for room
    started = time.monotonic()
    assert names(queue.take(max_batch=4, wait_s=0, timeout_s=1, company=lambda _priority: True)) == ["first"]
    assert time.monotonic() - started < COMPANY_WAIT_S


def test_the_wait_for_company_being_prepared_is_bounded():
    queue = filled(job(1, "a", "first"))
    started = time.monotonic()
    assert names(queue.take(max_batch=4, wait_s=0, timeout_s=1, company=lambda _priority: True)) == ["first"]
    assert time.monotonic() - started >= COMPANY_WAIT_S
