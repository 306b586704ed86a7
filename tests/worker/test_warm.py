"""Warm reactions (the warm lane) and live previews through a real worker and redis-server."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from PIL import Image

from npc_video_client.contract import JobStatus
from tests.support.jobs import envelope, params
from tests.support.streams import dead_letters, event_types, events, pending_count
from tests.support.video import path_of
from tests.support.waiting import wait_until

NPC = {key: value for key, value in params().items() if key.startswith("npc_")}
FAST = {"steps": 2, "width": 32, "height": 32, "duration": 0.5}
SLOW = {"steps": 60, "width": 32, "height": 32, "duration": 0.5}


def reaction(expression: str, **extra: object) -> dict[str, object]:
    return {"expression": expression, "emotion": "pleased", "animation": "idle", "intensity": 0.5, **extra}


def real_job(job_id: str, warmed: dict[str, object]) -> dict[str, object]:
    """The real job a game sends later: the same params as the warm job."""
    return {"job_id": job_id, "operation_type": "npc_response", "params": warmed}


def warm_ended(redis_client, names, job_id: str) -> list[str]:
    return [event["type"] for event in events(redis_client, names, job_id)]


def test_a_warmed_reaction_ends_once_silently_and_is_a_cache_hit_for_the_real_job(
    start_worker, producer, redis_client, names
):
    smile = reaction("smiling", **FAST)
    (warm_id,) = producer.warm(NPC, [smile], preset="realtime")
    worker = start_worker()
    wait_until(lambda: warm_ended(redis_client, names, warm_id), what="the warm job's end")
    assert warm_ended(redis_client, names, warm_id) == ["job:completed"]  # its end only: no processing, no progress
    assert producer.warm_status(NPC, [smile], preset="realtime").ready_count == 1
    assert redis_client.get(names.result(warm_id)) is None and redis_client.get(names.state(warm_id)) is None
    params = {**NPC, **smile, "quality_preset": "realtime"}
    result = producer.wait(producer.submit(real_job("real", params)), timeout_s=60)
    assert result.status == JobStatus.COMPLETED and result.cache_hit
    assert redis_client.zscore(names.warm_index, result.storage_key) is not None
    metrics = worker.service.metrics
    assert metrics.warm_hits._value.get() == 1 and metrics.result_lookups._value.get() == 1
    assert metrics.warm_jobs.labels(outcome="finished")._value.get() == 1
    wait_until(lambda: pending_count(redis_client, names) == 0, what="everything acknowledged")


def test_a_real_job_preempts_the_warm_job_on_the_device_and_every_warm_job_finishes_once(
    start_worker, producer, redis_client, names
):
    reactions = [reaction(word, **SLOW) for word in ("a", "b", "c")]
    warm_ids = producer.warm(NPC, reactions)
    worker = start_worker()
    wait_until(worker.service.device.warm_running, what="a warm job on the device")
    result = producer.wait(producer.submit(envelope("urgent", **FAST)), timeout_s=60)
    assert result.status == JobStatus.COMPLETED and not result.cache_hit
    wait_until(lambda: all(warm_ended(redis_client, names, i) for i in warm_ids), timeout_s=180, what="all warmed")
    assert producer.warm_status(NPC, reactions).ready_count == 3
    for warm_id in warm_ids:
        assert warm_ended(redis_client, names, warm_id) == ["job:completed"]  # no failure, exactly one end
    metrics = worker.service.metrics
    assert metrics.warm_jobs.labels(outcome="preempted")._value.get() >= 1
    assert metrics.warm_jobs.labels(outcome="finished")._value.get() == 3
    assert not dead_letters(redis_client, names)
    wait_until(lambda: pending_count(redis_client, names) == 0, what="everything acknowledged")


def test_an_identical_real_job_joins_the_warm_job_making_its_video(start_worker, producer, redis_client, names):
    slow = reaction("laughing", **SLOW)
    (warm_id,) = producer.warm(NPC, [slow])
    worker = start_worker()
    wait_until(lambda: worker.service.device.warm_running() == [warm_id], what="the warm job on the device")
    result = producer.wait(producer.submit(real_job("rider", {**NPC, **slow})), timeout_s=120)
    assert result.status == JobStatus.COMPLETED and result.cache_hit
    types = event_types(redis_client, names, "rider")
    assert types[0] == "job:processing" and types[-1] == "job:completed" and "job:progress" in types
    assert warm_ended(redis_client, names, warm_id) == ["job:completed"]
    assert worker.service.metrics.warm_jobs.labels(outcome="preempted")._value.get() == 0  # joined, not preempted
    assert worker.service.metrics.warm_hits._value.get() == 1


def test_a_failing_warm_job_is_dropped_not_retried_nor_dead_lettered(start_worker, producer, redis_client, names):
    bad = reaction("shy", npc_base_image="data:image/png;base64,bm90IGFuIGltYWdl", **FAST)
    (warm_id,) = producer.warm(NPC, [bad])
    worker = start_worker()
    wait_until(lambda: warm_ended(redis_client, names, warm_id), what="the warm job's end")
    (end,) = events(redis_client, names, warm_id)
    assert (end["type"], end["error_code"], end["retryable"]) == ("job:failed", "invalid_image", False)
    assert not dead_letters(redis_client, names)
    assert worker.service.metrics.warm_jobs.labels(outcome="failed")._value.get() == 1
    assert producer.warm_status(NPC, [bad]).ready_count == 0


def test_the_warm_cache_keeps_its_budget_and_deletes_what_leaves(start_worker, producer, redis_client, names):
    first, second = reaction("one", **FAST), reaction("two", **FAST)
    start_worker(warm_cache_bytes=1)  # room for nothing: each new warmed video pushes the older ones out
    producer.warm(NPC, [first])
    wait_until(lambda: redis_client.zcard(names.warm_index) == 1, what="the first warmed")
    (old_key,) = [key.decode() for key in redis_client.zrange(names.warm_index, 0, -1)]
    producer.warm(NPC, [second])
    wait_until(lambda: producer.warm_status(NPC, [second]).ready_count == 1, what="the second warmed")
    assert old_key.encode() not in redis_client.zrange(names.warm_index, 0, -1)
    assert producer.warm_status(NPC, [first]).ready_count == 0  # its ready mark left with it
    outputs = Path(
        path_of(
            producer.wait(producer.submit(real_job("after", {**NPC, **second, "quality_preset": "fast"})), 60).url or ""
        )
    ).parent
    assert outputs.exists()


def test_previews_come_when_asked_decode_as_images_and_never_for_warm_jobs(start_worker, producer, redis_client, names):
    worker = start_worker(preview_interval_ms=0)
    asked = envelope("watched", **{**FAST, "steps": 4})
    asked["preview"] = True
    producer.wait(producer.submit(asked), timeout_s=60)
    producer.wait(producer.submit(envelope("unwatched", **FAST)), timeout_s=60)
    previews = [event for event in events(redis_client, names, "watched") if event["type"] == "job:preview"]
    steps = [event["step"] for event in previews]
    assert steps[0] == 1 and steps == sorted(set(steps)) and steps[-1] <= 4  # then as the CPU budget allows
    image = Image.open(io.BytesIO(base64.b64decode(previews[0]["data"])))
    assert image.format == "WEBP" and (image.width, image.height) == (previews[0]["width"], previews[0]["height"])
    assert getattr(image, "n_frames", 1) == previews[0]["frames"] and previews[0]["mime"] == "image/webp"
    assert "job:preview" not in event_types(redis_client, names, "unwatched")
    assert all(len(base64.b64decode(event["data"])) < 16_000 for event in previews)
    wait_until(lambda: worker.service.metrics.previews._value.get() == len(previews), what="previews on /metrics")
    assert worker.service.metrics.preview_cpu._value.get() > 0
    (warm_id,) = producer.warm(NPC, [reaction("calm", **FAST)])
    wait_until(lambda: events(redis_client, names, warm_id), what="the warm job's end")
    assert event_types(redis_client, names, warm_id) == ["job:completed"]
    assert json.loads(redis_client.xrevrange(names.events, count=1)[0][1][b"event"])["job_id"] == warm_id


def test_cancelled_warm_jobs_stop_running_or_waiting_and_warming_again_withdraws_the_cancel(
    start_worker, producer, redis_client, names
):
    running, waiting = reaction("bored", **SLOW), reaction("sleepy", **SLOW)
    warm_ids = producer.warm(NPC, [running, waiting])
    worker = start_worker()
    wait_until(lambda: worker.service.device.warm_running() == warm_ids[:1], what="the first warm job on the device")
    assert producer.warm_cancel(NPC, [running, waiting]) == warm_ids
    wait_until(lambda: all(warm_ended(redis_client, names, i) for i in warm_ids), timeout_s=60, what="both ended")
    for warm_id in warm_ids:
        assert warm_ended(redis_client, names, warm_id) == ["job:cancelled"]
        assert redis_client.exists(names.cancel(warm_id)) == 0  # deleted in the terminal write
    assert worker.service.metrics.warm_jobs.labels(outcome="cancelled")._value.get() == 2
    assert producer.warm_status(NPC, [running, waiting]).ready_count == 0
    assert not dead_letters(redis_client, names)
    wait_until(lambda: pending_count(redis_client, names) == 0, what="everything acknowledged")

    quick = reaction("bored", **FAST)
    producer.warm_cancel(NPC, [quick])  # the NPC left before it was even warmed ...
    producer.warm(NPC, [quick])  # ... and came back: warming again withdraws that cancel
    wait_until(lambda: producer.warm_status(NPC, [quick]).ready_count == 1, what="the reaction warmed again")


def test_a_warm_job_cancelled_while_a_real_job_rides_along_finishes_for_it(start_worker, producer, redis_client, names):
    slow = reaction("grinning", **SLOW)
    (warm_id,) = producer.warm(NPC, [slow])
    worker = start_worker()
    wait_until(lambda: worker.service.device.warm_running() == [warm_id], what="the warm job on the device")
    producer.submit(real_job("rider", {**NPC, **slow}))
    wait_until(lambda: "job:progress" in event_types(redis_client, names, "rider"), what="the rider following it")
    producer.warm_cancel(NPC, [slow])
    result = producer.wait("rider", timeout_s=120)
    assert result.status == JobStatus.COMPLETED and result.cache_hit
    assert warm_ended(redis_client, names, warm_id) == ["job:completed"]  # the rider needed its video


def test_on_a_cpu_device_a_warm_job_starts_once_the_real_jobs_before_it_are_finished(
    start_worker, producer, redis_client, names
):
    """The encode and upload of a real job share the CPU device's cores: the warm job waiting behind it begins its
    device work only after the real job's terminal write (on a GPU it would begin at once, beside them)."""
    start_worker()
    producer.submit(envelope("real", steps=2, width=64, height=64, duration=2))
    wait_until(lambda: "job:processing" in event_types(redis_client, names, "real"), what="the real job running")
    (warm_id,) = producer.warm(NPC, [reaction("eager", **FAST)])
    result = producer.wait("real", timeout_s=60)
    wait_until(lambda: warm_ended(redis_client, names, warm_id), what="the warm job's end")
    (real_end,) = [event for event in events(redis_client, names, "real") if event["type"] == "job:completed"]
    (warm_end,) = events(redis_client, names, warm_id)
    assert result.timings.encode_ms is not None and result.timings.encode_ms > 0
    assert warm_end["timings"]["generate_started_at"] >= real_end["timestamp"] - 1  # ms stamps, rounded
