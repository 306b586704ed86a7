"""worker.queue.leases against a real redis-server: acquiring, checking, keeping and handing back entries."""

from __future__ import annotations

import time
from typing import Any

import pytest

from npc_video_client.names import GROUP, LANES_BY_PRIORITY, Lane
from worker.queue.leases import BUSY_RECHECK_S, Lease, Leases, Ownership


def make_leases(redis_client, names, consumer: str = "c1", claim_idle_ms: int = 60_000) -> Leases:
    leases = Leases(redis_client, names, consumer, claim_idle_ms)
    leases.ensure_groups()
    return leases


def submit(redis_client, names, lane: str, job: str) -> str:
    return redis_client.xadd(names.lane(lane), {"job": job}).decode()


def pending(redis_client, stream: str) -> dict[str, dict[str, Any]]:
    """entry id -> {consumer, idle ms, deliveries} of the group's pending entries on one stream."""
    items: Any = redis_client.xpending_range(stream, GROUP, min="-", max="+", count=100)
    return {
        item["message_id"].decode(): {
            "consumer": item["consumer"].decode(),
            "idle": item["time_since_delivered"],
            "deliveries": item["times_delivered"],
        }
        for item in items
    }


def read_one(leases: Leases, lane: Lane = Lane.NORMAL) -> Lease:
    (lease,) = leases.read_new([lane], count=1, block_ms=None)
    return lease


def test_ensure_groups_creates_every_lane_from_the_start_and_is_idempotent(redis_client, names):
    early = submit(redis_client, names, "low", "before any worker")
    leases = make_leases(redis_client, names)
    leases.ensure_groups()  # BUSYGROUP is not an error
    for stream in names.lanes:
        groups: Any = redis_client.xinfo_groups(stream)
        assert [group["name"] for group in groups] == [GROUP.encode()]
    assert read_one(leases, Lane.LOW).entry_id == early  # created from id 0: earlier entries count


def test_read_new_registers_leases_with_their_fields_in_lane_priority_order(redis_client, names):
    leases = make_leases(redis_client, names)
    ids = {lane: submit(redis_client, names, lane.value, f"job-{lane.value}") for lane in reversed(LANES_BY_PRIORITY)}
    got = leases.read_new(list(LANES_BY_PRIORITY), count=5, block_ms=None)
    assert [lease.lane for lease in got] == list(LANES_BY_PRIORITY)
    for lease in got:
        assert lease.stream == names.lane(lease.lane)
        assert lease.entry_id == ids[lease.lane]
        assert lease.payload == f"job-{lease.lane.value}".encode()
        assert (lease.origin, lease.running, lease.due, lease.skips) == ("read", False, 0.0, 0)
        assert pending(redis_client, lease.stream)[lease.entry_id]["consumer"] == "c1"
    assert {(lease.stream, lease.entry_id) for lease in leases.owned()} == {(x.stream, x.entry_id) for x in got}
    assert leases.read_new(list(LANES_BY_PRIORITY), count=5, block_ms=None) == []  # nothing new


def test_read_new_respects_count_per_lane(redis_client, names):
    leases = make_leases(redis_client, names)
    for index in range(5):
        submit(redis_client, names, "normal", f"n{index}")
    assert [lease.payload for lease in leases.read_new([Lane.NORMAL], count=2, block_ms=None)] == [b"n0", b"n1"]
    assert len(leases.owned()) == 2


def test_take_over_claims_only_entries_idle_past_claim_idle_ms(redis_client, names):
    leases = make_leases(redis_client, names, claim_idle_ms=500)
    stale = submit(redis_client, names, "normal", "stale")
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("normal"): ">"}, count=1)
    time.sleep(0.6)
    fresh = submit(redis_client, names, "normal", "fresh")
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("normal"): ">"}, count=1)
    taken = leases.take_over(Lane.NORMAL, count=10)
    assert [(lease.entry_id, lease.origin, lease.payload) for lease in taken] == [(stale, "take-over", b"stale")]
    owners = pending(redis_client, names.lane("normal"))
    assert owners[stale]["consumer"] == "c1" and owners[fresh]["consumer"] == "ghost"
    assert leases.owned() == taken


def test_take_over_skips_an_entry_deleted_while_pending(redis_client, names):
    leases = make_leases(redis_client, names, claim_idle_ms=100)
    entry = submit(redis_client, names, "normal", "deleted")
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("normal"): ">"}, count=1)
    redis_client.xdel(names.lane("normal"), entry)
    time.sleep(0.2)
    assert leases.take_over(Lane.NORMAL, count=10) == []
    assert leases.owned() == []
    assert pending(redis_client, names.lane("normal")) == {}


def test_recover_own_takes_back_this_consumers_pending_entries_first_lane_first(redis_client, names):
    make_leases(redis_client, names)
    low = submit(redis_client, names, "low", "mine-low")
    high = submit(redis_client, names, "high", "mine-high")
    other = submit(redis_client, names, "normal", "someone else's")
    redis_client.xreadgroup(GROUP, "c1", {names.lane("low"): ">", names.lane("high"): ">"}, count=1)
    redis_client.xreadgroup(GROUP, "ghost", {names.lane("normal"): ">"}, count=1)
    restarted = Leases(redis_client, names, "c1", 60_000)
    recovered = restarted.recover_own()
    assert [(lease.lane, lease.entry_id, lease.origin) for lease in recovered] == [
        (Lane.HIGH, high, "recovered"),
        (Lane.LOW, low, "recovered"),
    ]
    assert [lease.payload for lease in recovered] == [b"mine-high", b"mine-low"]
    assert (names.lane("normal"), other) not in {(lease.stream, lease.entry_id) for lease in restarted.owned()}


def test_recover_own_acknowledges_an_own_entry_whose_payload_is_gone(redis_client, names):
    make_leases(redis_client, names)
    entry = submit(redis_client, names, "normal", "trimmed")
    redis_client.xreadgroup(GROUP, "c1", {names.lane("normal"): ">"}, count=1)
    redis_client.xdel(names.lane("normal"), entry)
    assert Leases(redis_client, names, "c1", 60_000).recover_own() == []
    assert pending(redis_client, names.lane("normal")) == {}


def test_check_reports_an_owned_entry_and_refreshes_its_idle_time(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    time.sleep(0.6)
    assert pending(redis_client, lease.stream)[lease.entry_id]["idle"] >= 550
    assert leases.check(lease) is Ownership.OWNED
    assert pending(redis_client, lease.stream)[lease.entry_id]["idle"] < 300


def test_check_reports_taken_when_another_consumer_claimed_it(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    redis_client.xclaim(lease.stream, GROUP, "other", 0, [lease.entry_id])
    assert leases.check(lease) is Ownership.TAKEN
    assert pending(redis_client, lease.stream)[lease.entry_id]["consumer"] == "other"  # not taken back


def test_check_reports_done_when_acknowledged_but_still_in_the_stream(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    redis_client.xack(lease.stream, GROUP, lease.entry_id)
    assert leases.check(lease) is Ownership.DONE
    assert pending(redis_client, lease.stream) == {}  # a check never re-claims a finished entry


def test_check_reports_gone_when_the_entry_was_deleted(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    redis_client.xdel(lease.stream, lease.entry_id)
    assert leases.check(lease) is Ownership.GONE


@pytest.mark.parametrize("loss", ["group destroyed", "stream deleted", "flushall"])
def test_check_reports_gone_when_the_group_or_stream_was_lost(redis_client, names, loss):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    if loss == "group destroyed":
        redis_client.xgroup_destroy(lease.stream, GROUP)
    elif loss == "stream deleted":
        redis_client.delete(lease.stream)
    else:
        redis_client.flushall()
    assert leases.check(lease) is Ownership.GONE


def test_keepalive_refreshes_the_idle_time_of_every_owned_lease(redis_client, names):
    leases = make_leases(redis_client, names)
    for lane in LANES_BY_PRIORITY:
        submit(redis_client, names, lane.value, f"job-{lane.value}")
    held = leases.read_new(list(LANES_BY_PRIORITY), count=5, block_ms=None)
    assert leases.start(held[0])  # running or waiting: both are kept alive
    time.sleep(0.6)
    assert leases.keepalive() == {Ownership.OWNED: 3}
    for lease in held:
        assert pending(redis_client, lease.stream)[lease.entry_id]["idle"] < 300, lease.describe()
    assert len(leases.owned()) == 3


def test_keepalive_never_takes_an_entry_back_from_its_new_owner(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    redis_client.xclaim(lease.stream, GROUP, "other", 0, [lease.entry_id])
    time.sleep(0.3)
    leases.keepalive()
    entry = pending(redis_client, lease.stream)[lease.entry_id]
    assert entry["consumer"] == "other" and entry["idle"] >= 250  # neither claimed back nor refreshed


def test_keepalive_drops_waiting_leases_taken_or_done_elsewhere_but_keeps_running_ones(redis_client, names):
    leases = make_leases(redis_client, names)
    for index in range(4):
        submit(redis_client, names, "normal", f"j{index}")
    taken_waiting, done_waiting, taken_running, done_running = leases.read_new([Lane.NORMAL], 4, None)
    assert leases.start(taken_running) and leases.start(done_running)
    for lease in (taken_waiting, taken_running):
        redis_client.xclaim(lease.stream, GROUP, "other", 0, [lease.entry_id])
    for lease in (done_waiting, done_running):
        redis_client.xack(lease.stream, GROUP, lease.entry_id)
    assert leases.keepalive() == {Ownership.TAKEN: 2, Ownership.DONE: 2}
    assert set(leases.owned()) == {taken_running, done_running}
    assert leases.waiting() == []


def test_keepalive_with_nothing_owned_does_nothing(redis_client, names):
    assert make_leases(redis_client, names).keepalive() == {}


def test_hand_back_gives_waiting_entries_back_as_new_entries_and_keeps_running_ones(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "hand me back")
    submit(redis_client, names, "normal", "still running")
    waiting, running = leases.read_new([Lane.NORMAL], count=2, block_ms=None)
    assert leases.start(running) is True
    assert leases.hand_back() == 1
    assert leases.owned() == [running]
    assert redis_client.xrange(waiting.stream, min=waiting.entry_id, max=waiting.entry_id) == []
    assert set(pending(redis_client, waiting.stream)) == {running.entry_id}
    entries: Any = redis_client.xrange(waiting.stream, min=f"({running.entry_id}", max="+")
    assert [fields for _id, fields in entries] == [{b"job": b"hand me back"}]
    again = make_leases(redis_client, names, consumer="c2")
    assert read_one(again).payload == b"hand me back"  # any worker can take it at once
    assert leases.start(waiting) is False  # handed back: it can no longer start here


def test_hand_back_refuses_an_entry_that_is_no_longer_owned(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "not mine any more")
    lease = read_one(leases)
    redis_client.xclaim(lease.stream, GROUP, "other", 0, [lease.entry_id])
    assert leases.hand_back() == 0
    assert leases.owned() == []  # forgotten here either way
    assert redis_client.xlen(lease.stream) == 1  # no copy was added
    assert pending(redis_client, lease.stream)[lease.entry_id]["consumer"] == "other"


def test_start_marks_a_waiting_lease_running_once(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    assert leases.start(lease) is True and lease.running
    assert leases.start(lease) is False  # already running
    assert leases.waiting() == []
    leases.release(lease)
    assert leases.start(lease) is False  # no longer owned


def test_release_forgets_only_that_lease_object(redis_client, names):
    leases = make_leases(redis_client, names)
    submit(redis_client, names, "normal", "x")
    lease = read_one(leases)
    twin = Lease(lease.lane, lease.stream, lease.entry_id, dict(lease.fields))
    leases.release(twin)  # same entry id, another object: not the registered lease
    assert leases.owned() == [lease]
    leases.release(lease)
    assert leases.owned() == []


def test_scheduling_state_changes_only_through_the_registry(redis_client, names):
    leases = make_leases(redis_client, names)
    for index in range(3):
        submit(redis_client, names, "normal", f"job-{index}")
    first, second, third = leases.read_new([Lane.NORMAL], count=3, block_ms=None)
    with pytest.raises(AttributeError):
        first.running = True  # type: ignore[misc]
    assert leases.start(third, passed_over=[first, second])
    assert (first.skips, second.skips, third.running) == (1, 1, True)
    leases.retry_later(third, 60.0, solo=True)
    assert not third.running and third.solo and third.due > time.monotonic() + 50
    assert leases.due_waiting(Lane.NORMAL) == 2  # the retry is not due
    assert leases.start(first)
    assert leases.wait_for_other_run(first) == BUSY_RECHECK_S[0]
    assert leases.wait_for_other_run(first) == BUSY_RECHECK_S[1]  # a little later each time
    assert not first.running
    leases.identify(first, "job-0")
    assert first.job_id == "job-0"
    assert leases.start(second)
    leases.put_back(second)
    assert not second.running and leases.start(second)
