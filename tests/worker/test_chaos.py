"""Chaos, as an operator's worst afternoon: three real workers, a burst of jobs across the lanes with about 5%
duplicate job ids, kill -9 of a random worker every ~2 s while it holds several entries (it is restarted under
its own consumer name, as a supervisor would), and one Redis restart (with AOF) in the middle. Another burst follows
when a fast machine is running out of work before the kills wanted are done.

Afterwards: nothing pending, no valid job dead-lettered, every job ended exactly once (one result, one final event),
every MP4 decodes to the frames its result announces, and the runs beyond one per job are at most what the kills
explain: a kill loses the runs its worker had begun and not finished (the one on the device, and those handed to
the finisher for encoding and upload, at most max(2, max_batch) of them); entries it only held (read ahead, taken
over, prepared for the device) never began and must not count.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from npc_video_client.contract import JobStatus
from npc_video_client.names import GROUP, StreamNames
from tests.support.jobs import envelope
from tests.support.redis_server import RedisServer
from tests.support.streams import dead_letters, final_events, pending_count, runs
from tests.support.video import decode_mp4, path_of
from tests.support.waiting import wait_until
from tests.support.worker_process import WorkerProcess

WORKERS = ("w1", "w2", "w3")
LANES = ("high", "normal", "low")
SIZE = {"width": 32, "height": 32, "duration": 0.5, "steps": 3}
SETTINGS = {"claim_idle_ms": 1_000, "retry_backoff_ms": 200}
SETTLE_S = 3.0
RUNS_IN_HAND = 1 + 2  # a worker's begun, unfinished runs: the device's (max_batch 1 on CPU) and the finisher's


def held_by(client: redis.Redis, names: StreamNames, consumer: str) -> int:
    held = 0
    for stream in names.lanes:
        summary: Any = client.xpending(stream, GROUP) if client.exists(stream) else {"consumers": []}
        held += sum(int(entry["pending"]) for entry in summary["consumers"] if entry["name"] == consumer.encode())
    return held


def submit_burst(client: redis.Redis, names: StreamNames, count: int, rng: random.Random, first: int = 0) -> list[str]:
    """`count` entries in one transaction, numbered from `first`; every 20th repeats an earlier job id of the burst
    (a producer retrying a submit)."""
    job_ids: list[str] = []
    pipe = client.pipeline(transaction=True)
    for index in range(first, first + count):
        job_id = job_ids[rng.randrange(len(job_ids))] if index % 20 == 19 else f"chaos-{index}"
        body = envelope(job_id, seed=int(job_id.split("-")[1]), **SIZE)
        pipe.xadd(names.lane(LANES[index % 3]), {"job": json.dumps(body)})
        job_ids.append(job_id)
    pipe.execute()
    return sorted(set(job_ids))


def run_chaos(
    spawn: Callable[..., WorkerProcess],
    redis_server: RedisServer,
    redis_client: redis.Redis,
    names: StreamNames,
    *,
    jobs: int,
    kills_wanted: int,
    kill_every_s: float,
    deadline_s: float,
) -> None:
    rng = random.Random(1234)
    workers = {name: spawn(name, **SETTINGS) for name in WORKERS}
    for worker in workers.values():
        worker.wait_ready()
    job_ids = submit_burst(redis_client, names, jobs, rng)
    bursts = 1
    started = time.monotonic()
    started_at = dict.fromkeys(WORKERS, started)
    kills = 0
    restarted_redis = False

    def unfinished() -> int:
        return sum(not redis_client.exists(names.result(job_id)) for job_id in job_ids)

    while kills < kills_wanted:
        assert time.monotonic() - started < deadline_s, f"chaos not over after {deadline_s} s ({kills} kills)"
        time.sleep(kill_every_s)
        if unfinished() < jobs // 2:  # a fast machine is running out of work before the kills wanted: more of it
            job_ids += submit_burst(redis_client, names, jobs, rng, first=bursts * jobs)
            bursts += 1
        if not restarted_redis and time.monotonic() - started > 3 * kill_every_s:
            redis_server.restart()
            restarted_redis = True
            continue
        # A worker restarted moments ago runs its recovered entries first: killing it again at once would hit the
        # same job over and over, which is what a poison job looks like (and rightly ends dead-lettered).
        settled = [name for name in WORKERS if time.monotonic() - started_at[name] > SETTLE_S]
        holding = [name for name in settled if held_by(redis_client, names, name) >= 2]
        if not holding:
            continue
        victim = rng.choice(holding)
        workers[victim].signal(signal.SIGKILL)
        workers[victim].wait_exit()
        kills += 1
        workers[victim] = spawn(victim, **SETTINGS)  # back under its own name: it recovers its own entries
        started_at[victim] = time.monotonic()
    assert restarted_redis, "the Redis restart did not happen"
    wait_until(
        lambda: unfinished() == 0,
        timeout_s=max(30.0, deadline_s - (time.monotonic() - started)),
        what="every job ended",
    )

    wait_until(lambda: pending_count(redis_client, names) == 0, timeout_s=60, what="nothing pending")
    dead = dead_letters(redis_client, names)
    assert dead == [], [(letter["error"], runs(redis_client, names, letter["error"]["job_id"])) for letter in dead]
    extra_runs = 0
    for job_id in job_ids:
        result = json.loads(redis_client.get(names.result(job_id)) or "null")
        assert result["status"] == JobStatus.COMPLETED, (job_id, result)
        assert [event["type"] for event in final_events(redis_client, names, job_id)] == ["job:completed"], job_id
        meta, frames = decode_mp4(path_of(result["url"]))
        assert len(frames) == result["num_frames"] and tuple(meta["size"]) == (result["width"], result["height"])
        extra_runs += len(runs(redis_client, names, job_id)) - 1
    assert extra_runs <= kills * RUNS_IN_HAND, f"{extra_runs} runs beyond one per job, {kills} kills"
    for worker in workers.values():
        worker.signal(signal.SIGTERM)
    for worker in workers.values():
        assert worker.wait_exit(timeout_s=60) == 0, worker.log()[-3000:]


def test_chaos_three_workers_kills_and_a_redis_restart(spawn, redis_server, redis_client, names):
    run_chaos(spawn, redis_server, redis_client, names, jobs=150, kills_wanted=6, kill_every_s=2.0, deadline_s=150)


@pytest.mark.slow
def test_chaos_long_variant(spawn, redis_server, redis_client, names):
    run_chaos(spawn, redis_server, redis_client, names, jobs=400, kills_wanted=40, kill_every_s=2.0, deadline_s=900)
