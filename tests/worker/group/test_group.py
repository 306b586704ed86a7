"""A worker group on the CPU (gloo): `npc-worker serve --devices cpu,cpu --group 2`, a real supervisor, two ranks and
a real redis-server. One job's sequence is split over both ranks with diffusers' context parallelism."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from npc_video_client.clock import now_ms
from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope
from tests.support.streams import events, final_events, pending_count, runs
from tests.support.supervisor_process import SupervisorProcess
from tests.support.video import decode_mp4, path_of
from tests.support.waiting import wait_until

SMALL = {"width": 64, "height": 64, "duration": 1.0, "steps": 4}


@pytest.fixture
def group(tmp_path: Path, catalog_path: Path, redis_server: Any) -> Iterator[Callable[..., SupervisorProcess]]:
    started: list[SupervisorProcess] = []

    def start(catalog: Path = catalog_path, **overrides: Any) -> SupervisorProcess:
        settings = {
            "catalog": catalog,
            "storage_url": f"file://{tmp_path / 'group-outputs'}",
            "redis_url": redis_server.url,
            "block_ms": 200,
            "progress_interval_ms": 0,
            "claim_idle_ms": 20_000,
            "group_timeout_s": 20,
            "group_start_timeout_s": 120,
            **overrides,
        }
        process = SupervisorProcess(tmp_path, "cpu,cpu", 1, group=2, **settings)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def frames_of(url: str | None) -> np.ndarray:
    return decode_mp4(path_of(url or ""))[1]


def test_a_group_of_two_runs_jobs_as_one_process_would_fails_and_restarts_whole_and_drains(
    group, producer, redis_client, names, make_runner
):
    supervisor = group()
    supervisor.wait_ready()
    assert len(supervisor.members()) == 2 and {rank for _consumer, rank in supervisor.members()} == {0, 1}

    # the same frames as one process (content keys agree; the MP4s are compared frame by frame)
    alone = make_runner()
    for job_id, extra in (("lora", {"loras": ["glow"]}), ("plain", {})):
        result = producer.wait(producer.submit(envelope(f"group-{job_id}", **SMALL, **extra)), timeout_s=120)
        assert result.status == JobStatus.COMPLETED, result.error_message
        reference = alone.run(envelope(f"alone-{job_id}", **SMALL, **extra))
        assert reference.storage_key == result.storage_key
        difference = np.abs(frames_of(result.url).astype(int) - frames_of(reference.url).astype(int)).max()
        assert difference <= 1, difference
    lora, plain = producer.result("group-lora"), producer.result("group-plain")
    assert lora is not None and plain is not None and lora.storage_key != plain.storage_key  # LoRAs switch

    # a cancel mid-denoise stops both ranks at the same step, and a deadline that passed while a job waited drops it
    # before it reaches the ranks: the group then runs the next job in lockstep
    producer.submit(envelope("group-cancel", **{**SMALL, "steps": 200}), lane="high")
    wait_until(lambda: any(e["type"] == "job:progress" for e in events(redis_client, names, "group-cancel")))
    expiring = envelope("group-deadline", **SMALL, seed=11)  # not a cache hit of an earlier job
    expiring["deadline"] = now_ms() + 300
    producer.submit(expiring)
    time.sleep(1.0)
    producer.cancel("group-cancel")
    assert producer.wait("group-cancel", timeout_s=120).status == JobStatus.CANCELLED
    assert producer.wait("group-deadline", timeout_s=120).status == JobStatus.EXPIRED
    assert producer.wait(producer.submit(envelope("group-after", **SMALL, seed=3)), 120).status == JobStatus.COMPLETED

    # kill -9 of the follower mid-job: the group ends and starts again whole; the job completes exactly once
    producer.submit(envelope("group-survivor", **{**SMALL, "steps": 120}))
    wait_until(lambda: runs(redis_client, names, "group-survivor"), what="the long job started")
    before = supervisor.members()
    follower = next(pid for (_consumer, rank), pid in before.items() if rank == 1)
    os.kill(follower, signal.SIGKILL)
    wait_until(
        lambda: len(after := supervisor.members()) == 2 and set(after.values()).isdisjoint(before.values()),
        timeout_s=60,
        what="the whole group started again",
    )
    result = producer.wait("group-survivor", timeout_s=240)
    assert result.status == JobStatus.COMPLETED
    assert [attempt for _worker, attempt in runs(redis_client, names, "group-survivor")] == [1, 2]
    assert len(final_events(redis_client, names, "group-survivor")) == 1

    # SIGTERM drains the group: the leader finishes, dismisses its follower, and every process exits 0
    producer.submit(envelope("group-last", **{**SMALL, "steps": 30}))
    wait_until(lambda: runs(redis_client, names, "group-last"), what="the last job started")
    supervisor.signal(signal.SIGTERM)
    assert supervisor.wait_exit(timeout_s=120) == 0, supervisor.log()[-3000:]
    assert producer.result("group-last") is not None and producer.result("group-last").status == JobStatus.COMPLETED
    assert pending_count(redis_client, names) == 0
    log = supervisor.log()
    assert "dismissed by the leader" in log and "group0: [0, 0]" in log


def test_a_model_the_group_cannot_split_is_refused_at_start_with_one_line(group, tmp_path):
    from tests.support.models import write_model

    model = write_model("cogvideox-i2v", tmp_path / "cogvideox")
    catalog = tmp_path / "cog-catalog.toml"
    catalog.write_text(
        f'[defaults]\nmodel = "cog"\n[models.cog]\nfamily = "cogvideox-i2v"\npath = "{model}"\ndtype = "float32"\n',
        encoding="utf-8",
    )
    supervisor = group(catalog=catalog)
    assert supervisor.wait_exit(timeout_s=120) == 2
    errors = [line for line in supervisor.log().splitlines() if line.startswith("error:")]
    assert errors and "cannot split model 'cog': the cogvideox-i2v denoiser has no context-parallel plan" in errors[0]
