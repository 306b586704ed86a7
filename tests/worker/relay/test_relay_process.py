"""`npc-worker relay` as operators run it: killed between PUBLISH and XACK it re-publishes the same event (same id),
as the Redis user docs/integrations/pixsim7.md defines (Redis refuses it nothing), on pixsim7's own Redis, and end to
end behind a real worker (progress only by default, every event with --events all)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from npc_video_client.client import NpcVideoClient
from npc_video_client.names import StreamNames
from tests.support.jobs import envelope
from tests.support.redis_server import RedisServer
from tests.support.video import path_of
from tests.support.waiting import wait_until
from tests.worker.relay.support import CHANNEL, Subscriber, every_event
from worker.queue.events import EventWriter

DOC = Path(__file__).resolve().parents[3] / "docs" / "integrations" / "pixsim7.md"
NAMES = StreamNames("npc")
GROUP = "relay-pixsim7"
PASSWORD = "relay-test-secret"


class RelayProcess:
    """`python -m worker relay --format pixsim7 ...` with only the NPC_WORKER_* variables given here."""

    def __init__(self, log_dir: Path, redis_url: str, *args: str, **env: str) -> None:
        variables = {
            key: value for key, value in os.environ.items() if not key.startswith(("NPC_WORKER_", "NPC_RELAY"))
        }
        variables.update(NPC_WORKER_REDIS_URL=redis_url, NPC_WORKER_BLOCK_MS="200", **env)
        self.log_path = log_dir / f"relay-{len(list(log_dir.glob('relay-*.log')))}.log"
        self._log = self.log_path.open("wb")
        command = [sys.executable, "-m", "worker", "relay", "--format", "pixsim7", *args]
        self.process = subprocess.Popen(command, env=variables, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_exit(self, timeout_s: float = 30) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def relay_process(tmp_path: Path) -> Iterator[Callable[..., RelayProcess]]:
    started: list[RelayProcess] = []

    def start(redis_url: str, *args: str, **env: str) -> RelayProcess:
        process = RelayProcess(tmp_path, redis_url, *args, **env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def documented_rules(server_version: tuple[int, ...]) -> list[str]:
    """The `ACL SETUSER npc-relay ...` rules of the integration doc with the test password; before Redis 7.2
    without `+client|setinfo`, as docs/deploy.md says."""
    lines = re.findall(r"^ACL SETUSER npc-relay (.+)$", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    assert len(lines) == 1, "docs/integrations/pixsim7.md should hold one ACL SETUSER line for npc-relay"
    rules = [">" + PASSWORD if rule == ">PASSWORD" else rule for rule in lines[0].split()]
    return [rule for rule in rules if server_version >= (7, 2) or rule != "+client|setinfo"]


def pending(client: redis.Redis) -> int:
    info: Any = client.xpending(NAMES.events, GROUP)
    return int(info["pending"])


def group_exists(client: redis.Redis) -> bool:
    groups: Any = client.xinfo_groups(NAMES.events) if client.exists(NAMES.events) else []
    return any(entry["name"].decode() == GROUP for entry in groups)


def test_killed_between_publish_and_ack_it_publishes_the_same_event_again(
    redis_server: RedisServer, redis_client, relay_process
):
    """The relay's user may not XACK: it dies right after its PUBLISH, as a relay killed at that point would. A
    relay started again (as the documented user) publishes that event once more, with the same id and content."""
    version = tuple(int(part) for part in str(redis_client.info("server")["redis_version"]).split(".")[:2])
    rules = documented_rules(version)
    redis_client.execute_command("ACL", "SETUSER", "npc-relay", "reset", *rules)
    redis_client.execute_command("ACL", "SETUSER", "relay-no-ack", "reset", *[r for r in rules if r != "+xack"])
    redis_client.execute_command("ACL", "LOG", "RESET")
    writer = EventWriter(redis_client, NAMES, worker="gpu-a:cuda", maxlen=1000, channel=None)
    writer.add(
        redis_client, every_event()[1]
    )  # a job:progress (the relay checks its job has not ended), before any relay ran
    subscriber = Subscriber(redis_server.url, CHANNEL)
    try:
        url = f"redis://{{user}}:{PASSWORD}@127.0.0.1:{redis_server.port}/0"
        dying = relay_process(url.format(user="relay-no-ack"), "--from-start")
        (first,) = subscriber.take(1)
        assert dying.wait_exit() == 2, dying.log()
        assert "may not run this" in dying.log() and "XACK" in dying.log().upper()
        assert pending(redis_client) == 1  # read and published, never acknowledged

        resumed = relay_process(url.format(user="npc-relay"))
        (again,) = subscriber.take(1)
        assert again == first  # the same message: event_id, timestamp and data
        assert first["event_type"] == "job:started" and first["event_id"].startswith("npc:events/")
        assert (first["data"]["job_id"], first["data"]["progress"]) == (4711, 0.25)
        wait_until(lambda: pending(redis_client) == 0, what="the entry acknowledged")
        subscriber.nothing_more()
        assert resumed.stop() == 0, resumed.log()
    finally:
        subscriber.close()
    refused: Any = redis_client.acl_log()
    assert {entry["username"] for entry in refused} == {"relay-no-ack"}, refused  # the documented user: nothing


def test_it_publishes_on_pixsim7s_own_redis_when_told_to(
    redis_server: RedisServer, redis_client, relay_process, tmp_path
):
    pixsim7_redis = RedisServer(tmp_path / "pixsim7-redis", persistent=False)
    pixsim7_redis.start()
    try:
        subscriber = Subscriber(pixsim7_redis.url, "pixsim7:test")
        relay = relay_process(redis_server.url, "--channel", "pixsim7:test", NPC_RELAY_PUBLISH_URL=pixsim7_redis.url)
        wait_until(lambda: group_exists(redis_client), what="the relay's group")
        EventWriter(redis_client, NAMES, "gpu-a:cuda", 1000, None).add(redis_client, every_event()[0])
        (message,) = subscriber.take(1)
        assert message["event_type"] == "job:started" and message["data"]["generation_id"] == 4711
        assert redis_client.pubsub_numsub("pixsim7:test") == [(b"pixsim7:test", 0)]  # not the events' Redis
        assert relay.stop() == 0, relay.log()
        subscriber.close()
    finally:
        pixsim7_redis.stop()


def test_a_publish_url_that_is_not_redis_is_refused_in_one_line(redis_server: RedisServer, relay_process):
    relay = relay_process(redis_server.url, "--publish-url", "http://pixsim7.example.com")
    assert relay.wait_exit() == 2
    assert relay.log().strip() == "error: --publish-url (NPC_RELAY_PUBLISH_URL) must be a redis:// or rediss:// URL"


def test_a_subscriber_sees_pixsim7_envelopes_of_real_jobs(redis_server, redis_client, start_worker, relay_process):
    """By default the progress of the running job only, keyed by pixsim7's generation id; with --events all (another
    group, from the start of the stream) the terminal events too, a refused job's included."""
    subscriber = Subscriber(redis_server.url, CHANNEL)
    relay = relay_process(redis_server.url)
    wait_until(lambda: group_exists(redis_client), what="the relay's group")
    start_worker()
    producer = NpcVideoClient(redis_server.url)
    producer.submit(envelope("gen-4711", steps=3) | {"metadata": {"generation_id": 4711, "user_id": 3}})
    bad = envelope("gen-4712", intensity=1.5) | {"metadata": {"generation_id": 4712}}
    redis_client.xadd(NAMES.lane("normal"), {"job": json.dumps(bad)})  # as any producer may, unvalidated
    producer.wait("gen-4711", timeout_s=120)
    producer.wait("gen-4712", timeout_s=60)
    progress = subscriber.take_until(lambda seen: any(m["data"]["progress"] == 1.0 for m in seen), timeout_s=60)
    subscriber.nothing_more(1.0)
    assert {m["event_type"] for m in progress} == {"job:started"}
    assert {(m["data"]["job_id"], m["data"]["npc_job_id"], m["data"]["status"]) for m in progress} == {
        (4711, "gen-4711", "processing")
    }
    fractions = [m["data"]["progress"] for m in progress]
    assert fractions[0] == 0.0 and fractions == sorted(fractions)  # the run's start, then throttled steps to the last
    assert relay.stop() == 0, relay.log()

    everything = relay_process(redis_server.url, "--events", "all", "--group", "relay-all", "--from-start")
    messages = subscriber.take_until(
        lambda seen: {m["event_type"] for m in seen} >= {"job:completed", "job:failed"}, timeout_s=60
    )
    subscriber.close()
    assert everything.stop() == 0, everything.log()
    assert {message["origin"] for message in messages} == {"npc-video-worker"}
    assert len({message["event_id"] for message in messages}) == len(messages)
    (done,) = [m["data"] for m in messages if m["event_type"] == "job:completed"]
    assert done["job_id"] == 4711 and done["status"] == "completed" and done["error"] is None and done["user_id"] == 3
    assert done["duration"] == round(done["duration_sec"] * 1000) and done["duration"] > 0
    video = path_of(done["video_url"])
    assert done["result_url"] == done["video_url"] and video.read_bytes()[4:8] == b"ftyp"
    assert video.stat().st_mode & 0o777 == 0o644  # a web server in front of the folder may serve it
    (failed,) = [m["data"] for m in messages if m["event_type"] == "job:failed"]
    assert failed["job_id"] == 4712 and failed["npc_job_id"] == "gen-4712"
    assert failed["error_code"] == "invalid_params" and "params.intensity" in failed["error"]
