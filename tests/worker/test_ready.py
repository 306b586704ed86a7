"""The ready queue between the intake thread and the device loop: lane order, batches of one lane and one key,
waiting for company only when asked, room for at most `capacity` prepared jobs."""

from __future__ import annotations

import threading
import time

from worker.ready import ReadyJob, ReadyQueue

NEVER = lambda: False  # noqa: E731 - a stop that is never asked


def job(priority: int, key: str | None, name: str) -> ReadyJob:
    return ReadyJob(priority=priority, batch_key=key, payload=name)


def names(batch: list[ReadyJob]) -> list[str]:
    return [item.payload for item in batch]


def filled(*jobs: ReadyJob, capacity: int = 8) -> ReadyQueue:
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
    assert ReadyQueue(2).take(max_batch=1, wait_s=0, timeout_s=0.2) == []
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
