"""The pixsim7 format: by default only running jobs' progress, as pixsim7's registered `job:started` keyed by its
generation id and throttled per job; with `events=all` the terminal events too; jobs that are not pixsim7's skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from npc_video_client.contract import JobEvent, JobProgressEvent
from tests.worker.relay.support import METADATA, STAMP, every_event
from worker.relay.pixsim7 import Pixsim7Events, Pixsim7Format, iso_timestamp

EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
ENVELOPE_KEYS = {"event_type", "data", "timestamp", "event_id", "origin"}
COMMON = {"job_id", "generation_id", "npc_job_id", "user_id", "status", "worker", "metadata"}


def as_read(event: Any) -> JobEvent:
    """The event as the relay gets it: parsed from the JSON the worker wrote."""
    return EVENTS.validate_python(event.model_dump(mode="json"))


def published(relay_format: Pixsim7Format, event: Any, entry: str = "1-0") -> dict[str, Any] | None:
    message = relay_format.translate("npc:events", entry, as_read(event))
    return None if message is None else dict(json.loads(json.dumps(message, allow_nan=False)))


def test_by_default_only_a_running_jobs_progress_is_published_as_pixsim7s_job_started():
    relay_format = Pixsim7Format(progress_interval_ms=0)
    messages = [published(relay_format, event, f"{STAMP}-{index}") for index, event in enumerate(every_event())]
    started, progress, *ends = messages
    assert ends == [None] * 5  # retrying, failed, expired, cancelled, completed: pixsim7's poller publishes its own
    assert started is not None and progress is not None
    assert (started["event_type"], progress["event_type"]) == ("job:started", "job:started")
    assert started["data"] == {
        "job_id": 4711, "generation_id": 4711, "npc_job_id": "j-1", "user_id": 3, "status": "processing",
        "worker": "gpu-a:cuda", "metadata": METADATA,
        "progress": 0.0, "step": 0, "total_steps": None, "attempt": 1, "model": "tiny-wan", "preset": "realtime",
    }  # fmt: skip
    assert {key: progress["data"][key] for key in ("progress", "step", "total_steps")} == {
        "progress": 0.25, "step": 1, "total_steps": 4,
    }  # fmt: skip
    assert set(progress["data"]) == COMMON | {"progress", "step", "total_steps"}


def test_every_message_is_pixsim7s_bridge_envelope():
    for index, event in enumerate(every_event()):
        message = published(Pixsim7Format(events=Pixsim7Events.ALL, progress_interval_ms=0), event, f"{STAMP}-{index}")
        assert message is not None and set(message) == ENVELOPE_KEYS
        assert message["origin"] == "npc-video-worker"
        assert message["event_id"] == f"npc:events/{STAMP}-{index}"
        assert message["timestamp"] == "2025-11-25T14:13:10.123+00:00"
        assert (message["data"]["job_id"], message["data"]["npc_job_id"]) == (4711, "j-1")


def test_the_timestamp_is_iso_8601_utc_exact_to_the_millisecond():
    for stamp in (0, 999, STAMP, 4_102_444_800_001):
        parsed = datetime.fromisoformat(iso_timestamp(stamp))  # what pixsim7's bridge does with it
        assert parsed.tzinfo is not None and parsed.utcoffset() == UTC.utcoffset(None)
        assert round(parsed.timestamp() * 1000) == stamp
        assert iso_timestamp(stamp).endswith("+00:00") and len(iso_timestamp(stamp).split(".")[1]) == 9


def progress_at(timestamp: int, step: int, total: int = 10, job_id: str = "j-1") -> JobProgressEvent:
    return JobProgressEvent(
        job_id=job_id, timestamp=timestamp, worker="w", metadata=METADATA, step=step, total_steps=total,
        progress=step / total,
    )  # fmt: skip


def test_progress_is_throttled_per_job_by_the_events_own_time_and_the_last_step_always_passes():
    relay_format = Pixsim7Format(progress_interval_ms=1_000)
    steps = [(0, 1), (500, 2), (999, 3), (1_000, 4), (1_400, 5), (2_100, 6), (2_200, 10)]
    passed = [step for at, step in steps if published(relay_format, progress_at(STAMP + at, step)) is not None]
    assert passed == [1, 4, 6, 10]
    other = progress_at(STAMP + 1_100, 1, job_id="j-2")  # another job has its own clock
    assert published(relay_format, other) is not None


def test_a_new_run_and_a_final_event_start_the_throttle_over():
    relay_format = Pixsim7Format(progress_interval_ms=1_000)
    assert published(relay_format, progress_at(STAMP, 1)) is not None
    assert published(relay_format, progress_at(STAMP + 10, 2)) is None
    retry_started = every_event()[0].model_copy(update={"timestamp": STAMP + 20, "attempt": 2})
    assert published(relay_format, retry_started)["data"]["attempt"] == 2  # type: ignore[index]
    assert published(relay_format, progress_at(STAMP + 30, 1)) is None  # a run's start counts as its first message
    cancelled = every_event()[5]
    assert published(relay_format, cancelled) is None
    assert published(relay_format, progress_at(STAMP + 40, 1)) is not None  # forgotten at the final event


@pytest.mark.parametrize("metadata", [None, {"scene": "tavern"}, {"generation_id": "4711"}, {"generation_id": True}])
def test_jobs_that_are_not_pixsim7_generations_are_skipped(metadata):
    relay_format = Pixsim7Format(events=Pixsim7Events.ALL, progress_interval_ms=0)
    assert all(published(relay_format, event) is None for event in every_event(metadata=metadata))


@pytest.mark.parametrize(
    ("index", "event_type", "status", "fields"),
    [
        (
            2,
            "job:retrying",
            "pending",
            {"error": "CUDA OOM", "error_code": "out_of_memory", "attempt": 1, "retryable": True},
        ),
        (
            3,
            "job:failed",
            "failed",
            {"error": "upload failed", "error_code": "storage_error", "attempt": 3, "retryable": False},
        ),
        (
            4,
            "job:failed",
            "failed",
            {
                "error": "deadline exceeded: the job's deadline (2025-11-25T14:13:09.123+00:00) passed before it was "
                "generated",
                "error_code": "deadline_exceeded",
                "attempt": None,
                "retryable": False,
                "deadline": STAMP - 1_000,
            },
        ),
        (5, "job:cancelled", "cancelled", {"error": None}),
    ],
)
def test_with_all_events_each_terminal_type_maps_to_its_pixsim7_event(index, event_type, status, fields):
    message = published(Pixsim7Format(events=Pixsim7Events.ALL), every_event()[index])
    assert message is not None and message["event_type"] == event_type
    data = message["data"]
    assert data["status"] == status
    assert set(data) == COMMON | set(fields)
    assert {key: data[key] for key in fields} == fields


def test_with_all_events_completed_carries_the_urls_the_duration_in_ms_and_no_error():
    message = published(Pixsim7Format(events=Pixsim7Events.ALL), every_event()[6])
    assert message is not None and message["event_type"] == "job:completed"
    data = message["data"]
    assert data["status"] == "completed" and data["job_id"] == 4711
    assert data["result_url"] == data["video_url"] == "https://videos.example.com/npc-7/ab/abc.mp4"
    assert data["thumbnail_url"] == "https://videos.example.com/npc-7/ab/abc.jpg"
    assert data["duration"] == 3083  # 37 frames at 12 fps: 3.0833 s
    assert data["duration_sec"] == pytest.approx(37 / 12)
    assert data["error"] is None
    assert (data["width"], data["height"], data["fps"], data["num_frames"]) == (512, 512, 12, 37)
    assert (data["seed"], data["model"], data["preset"], data["cache_hit"]) == (42, "tiny-wan", "fast", False)
    assert (data["storage_key"], data["content_type"], data["processing_ms"]) == ("npc-7/ab/abc.mp4", "video/mp4", 1234)


def test_the_origin_is_the_operators_choice():
    message = Pixsim7Format(origin="npc-video-eu").translate("game{npc}:events", "1-0", as_read(every_event()[0]))
    assert message is not None and message["origin"] == "npc-video-eu"
    assert message["event_id"] == "game{npc}:events/1-0"
