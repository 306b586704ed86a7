"""The relay against a real redis-server: every event published in pixsim7's envelope and acknowledged, where a
new group starts, resuming after a restart, pending entries first with the same ids, entries it cannot relay, a
Redis restart in the middle; by default progress only, never the progress of a job that has already ended."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis

from npc_video_client.contract import JobResult, JobStatus
from npc_video_client.names import StreamNames
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until
from tests.worker.relay.support import METADATA, every_event
from worker.queue.events import EventWriter
from worker.relay import Pixsim7Events, PublishRefused

NAMES = StreamNames("npc")
GROUP = "relay-pixsim7"


def write(client: redis.Redis, events: list[Any]) -> list[str]:
    """Add events as the worker does; their entry ids."""
    writer = EventWriter(client, NAMES, worker="gpu-a:cuda", maxlen=1000, channel=None)
    for event in events:
        writer.add(client, event)
    raw: Any = client.xrange(NAMES.events)
    return [entry_id.decode() for entry_id, _fields in raw][-len(events) :]


def pending(client: redis.Redis, group: str = GROUP) -> int:
    info: Any = client.xpending(NAMES.events, group)
    return int(info["pending"])


def group_exists(client: redis.Redis, group: str = GROUP) -> bool:
    if not client.exists(NAMES.events):
        return False
    groups: Any = client.xinfo_groups(NAMES.events)
    return any(entry["name"].decode() == group for entry in groups)


def test_every_event_is_published_in_order_with_ids_from_its_entry_and_acknowledged(
    start_relay, subscribe, redis_client
):
    subscriber = subscribe()
    relay = start_relay()
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    entry_ids = write(redis_client, every_event())
    messages = subscriber.take(7)
    assert [message["event_type"] for message in messages] == [
        "job:started", "job:started", "job:retrying", "job:failed", "job:failed", "job:cancelled", "job:completed",
    ]  # fmt: skip
    assert [message["event_id"] for message in messages] == [f"npc:events/{entry_id}" for entry_id in entry_ids]
    assert {message["data"]["generation_id"] for message in messages} == {4711}
    wait_until(lambda: pending(redis_client) == 0, what="every entry acknowledged")
    relay.stop()
    assert relay.relay.published == 7


def test_a_new_group_starts_at_new_events_unless_asked_to_start_at_the_oldest(start_relay, subscribe, redis_client):
    (before,) = write(redis_client, every_event()[:1])
    subscriber = subscribe()
    relay = start_relay()
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    (after,) = write(redis_client, every_event()[1:2])
    assert [message["event_id"] for message in subscriber.take(1)] == [f"npc:events/{after}"]
    subscriber.nothing_more()
    relay.stop()

    from_start = start_relay(group="relay-replay", start="0")
    assert [message["event_id"] for message in subscriber.take(2)] == [f"npc:events/{before}", f"npc:events/{after}"]
    from_start.stop()


def test_a_restarted_relay_resumes_where_it_stopped(start_relay, subscribe, redis_client):
    subscriber = subscribe()
    first = start_relay()
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    write(redis_client, every_event()[:2])
    assert len(subscriber.take(2)) == 2
    first.stop()
    missed = write(redis_client, every_event()[2:5])  # while no relay runs
    second = start_relay()
    assert [message["event_id"] for message in subscriber.take(3)] == [f"npc:events/{entry}" for entry in missed]
    subscriber.nothing_more()  # nothing published twice
    second.stop()


def test_own_pending_entries_are_published_first_with_the_ids_they_had(start_relay, subscribe, redis_client):
    """A relay that read entries and died before acknowledging them (here: read by hand under its name)."""
    redis_client.xgroup_create(NAMES.events, GROUP, id="$", mkstream=True)
    in_hand = write(redis_client, every_event()[:3])
    redis_client.xreadgroup(GROUP, "relay", {NAMES.events: ">"}, count=10)
    assert pending(redis_client) == 3
    newer = write(redis_client, every_event()[3:4])
    subscriber = subscribe()
    relay = start_relay(batch=2)  # two batches of own pending entries, then the new one
    ids = [message["event_id"] for message in subscriber.take(4)]
    assert ids == [f"npc:events/{entry}" for entry in in_hand + newer]
    wait_until(lambda: pending(redis_client) == 0, what="every entry acknowledged")
    relay.stop()


def test_entries_it_cannot_relay_are_skipped_with_a_log_line_and_acknowledged(
    start_relay, subscribe, redis_client, caplog
):
    redis_client.xgroup_create(NAMES.events, GROUP, id="$", mkstream=True)
    trimmed = redis_client.xadd(NAMES.events, {"event": every_event()[0].model_dump_json()})
    redis_client.xreadgroup(GROUP, "relay", {NAMES.events: ">"}, count=10)  # pending, then trimmed away
    redis_client.xdel(NAMES.events, trimmed)
    future = {"type": "job:teleported", "job_id": "j-1", "status": "processing", "timestamp": 1, "worker": "w"}
    redis_client.xadd(NAMES.events, {"event": json.dumps(future)})
    redis_client.xadd(NAMES.events, {"event": "not json"})
    redis_client.xadd(NAMES.events, {"other": "field"})
    broken = every_event()[1].model_dump(mode="json") | {"progress": 7}
    redis_client.xadd(NAMES.events, {"event": json.dumps(broken)})
    (good,) = write(redis_client, every_event()[6:])
    subscriber = subscribe()
    with caplog.at_level(logging.INFO, logger="worker.relay.consumer"):
        relay = start_relay()
        assert [message["event_id"] for message in subscriber.take(1)] == [f"npc:events/{good}"]
        wait_until(lambda: pending(redis_client) == 0, what="every entry acknowledged")
        relay.stop()
    subscriber.nothing_more()
    log = caplog.text
    assert "was trimmed from npc:events before it was relayed" in log
    assert "has type 'job:teleported', unknown to this relay; skipped" in log
    assert "is not JSON" in log and "has no field 'event'" in log
    assert "does not parse (job:progress.progress: Input should be less than or equal to 1 (got 7))" in log


def test_a_redis_restart_is_waited_out_and_relaying_goes_on(
    start_relay, subscribe, redis_client, redis_server: RedisServer
):
    subscriber = subscribe()
    relay = start_relay()
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    write(redis_client, every_event()[:1])
    assert len(subscriber.take(1)) == 1
    redis_server.restart()  # persistent: the stream and the group (with its position) survive
    subscriber = subscribe()
    (after,) = write(redis_client, every_event()[1:2])
    assert [message["event_id"] for message in subscriber.take(1)] == [f"npc:events/{after}"]
    relay.stop()


def test_a_group_lost_with_redis_data_is_created_again_from_the_start(start_relay, subscribe, redis_client):
    subscriber = subscribe()
    relay = start_relay()
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    redis_client.delete(NAMES.events)  # as after a restart without persistence: stream and group gone
    (first_after,) = write(redis_client, every_event()[:1])
    assert [message["event_id"] for message in subscriber.take(1)] == [f"npc:events/{first_after}"]
    relay.stop()


def test_a_refused_publish_stops_the_relay_naming_the_publish_redis_and_the_entry_stays_pending(
    start_relay, redis_client, redis_server: RedisServer
):
    redis_client.execute_command("ACL", "SETUSER", "no-publish", "on", ">pw", "~*", "&*", "+@all", "-publish")
    publisher = redis.Redis.from_url(f"redis://no-publish:pw@127.0.0.1:{redis_server.port}/0")
    relay = start_relay(publisher=publisher)
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    write(redis_client, every_event()[:1])
    relay.thread.join(20)
    assert not relay.thread.is_alive()
    (error,) = relay.errors
    assert isinstance(error, PublishRefused)
    assert str(error).startswith("the publish Redis (--publish-url) refused PUBLISH on channel pixsim7:events:v1: ")
    assert pending(redis_client) == 1  # published again by the next relay that may


def test_by_default_only_progress_is_published_and_never_that_of_a_job_that_has_ended(
    start_relay, subscribe, redis_client
):
    """A relay that catches up (here: a group created from the start of the stream) finds the progress of a job that
    ended meanwhile: publishing it would show pixsim7's UI a finished generation running again."""
    ended = every_event("j-ended", metadata=METADATA | {"generation_id": 4712})
    write(redis_client, ended[:2])  # its start and a step, then its end: the result key
    redis_client.set(NAMES.result("j-ended"), JobResult(job_id="j-ended", status=JobStatus.COMPLETED).model_dump_json())
    write(redis_client, every_event("j-live"))  # a run, its progress, and every terminal type
    subscriber = subscribe()
    relay = start_relay(events=Pixsim7Events.PROGRESS, start="0")
    messages = subscriber.take(2)
    subscriber.nothing_more()
    assert [(m["event_type"], m["data"]["npc_job_id"], m["data"]["progress"]) for m in messages] == [
        ("job:started", "j-live", 0.0),
        ("job:started", "j-live", 0.25),
    ]
    wait_until(lambda: pending(redis_client) == 0, what="every entry acknowledged")
    relay.stop()
    assert (relay.relay.published, relay.relay.stale) == (2, 2)
