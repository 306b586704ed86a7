"""The pixsim7 format: every worker event type in pixsim7's bridge envelope, with the fields pixsim7 reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter

from npc_video_client.contract import JobEvent
from tests.worker.relay.support import METADATA, STAMP, every_event
from worker.relay.pixsim7 import Pixsim7Format, iso_timestamp

EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
ENVELOPE_KEYS = {"event_type", "data", "timestamp", "event_id", "origin"}


def translated(index: int, metadata: dict[str, Any] | None = METADATA) -> dict[str, Any]:
    """The message of the index-th sample event, as published: through JSON and back."""
    event = EVENTS.validate_python(every_event(metadata=metadata)[index].model_dump(mode="json"))
    message = Pixsim7Format().translate("npc:events", f"{STAMP}-{index}", event)
    return dict(json.loads(json.dumps(message, allow_nan=False)))


def test_every_message_is_pixsim7s_bridge_envelope_with_the_job_and_generation_ids():
    for index in range(len(every_event())):
        message = translated(index)
        assert set(message) == ENVELOPE_KEYS
        assert message["origin"] == "npc-video-worker"
        assert message["event_id"] == f"npc:events/{STAMP}-{index}"
        assert message["timestamp"] == "2025-11-25T14:13:10.123+00:00"
        data = message["data"]
        assert (data["job_id"], data["generation_id"], data["user_id"]) == ("j-1", 4711, 3)
        assert data["metadata"] == METADATA and data["worker"] == "gpu-a:cuda"


def test_the_timestamp_is_iso_8601_utc_exact_to_the_millisecond():
    for stamp in (0, 999, STAMP, 4_102_444_800_001):
        parsed = datetime.fromisoformat(iso_timestamp(stamp))  # what pixsim7's bridge does with it
        assert parsed.tzinfo is not None and parsed.utcoffset() == UTC.utcoffset(None)
        assert round(parsed.timestamp() * 1000) == stamp
        assert iso_timestamp(stamp).endswith("+00:00") and len(iso_timestamp(stamp).split(".")[1]) == 9


@pytest.mark.parametrize(
    ("index", "event_type", "status", "fields"),
    [
        (0, "job:started", "processing", {"attempt": 1, "model": "tiny-wan", "preset": "realtime"}),
        (1, "job:progress", "processing", {"progress": 0.25, "step": 1, "total_steps": 4}),
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
def test_each_event_type_maps_to_its_pixsim7_event(index, event_type, status, fields):
    message = translated(index)
    assert message["event_type"] == event_type
    data = message["data"]
    assert data["status"] == status
    common = {"job_id", "generation_id", "user_id", "status", "worker", "metadata"}
    assert set(data) == common | set(fields)
    assert {key: data[key] for key in fields} == fields


def test_a_retried_failure_is_not_final_for_pixsim7_and_the_final_one_is():
    kinds = [translated(index)["event_type"] for index in range(len(every_event()))]
    assert kinds.count("job:failed") == 2  # the final failure and the expiry; never the retried attempt
    assert kinds[2] == "job:retrying"


def test_completed_carries_the_urls_the_duration_in_ms_and_no_error():
    data = translated(6)["data"]
    assert translated(6)["event_type"] == "job:completed" and data["status"] == "completed"
    assert data["result_url"] == data["video_url"] == "https://videos.example.com/npc-7/ab/abc.mp4"
    assert data["thumbnail_url"] == "https://videos.example.com/npc-7/ab/abc.jpg"
    assert data["duration"] == 3083  # 37 frames at 12 fps: 3.0833 s
    assert data["duration_sec"] == pytest.approx(37 / 12)
    assert data["error"] is None
    assert (data["width"], data["height"], data["fps"], data["num_frames"]) == (512, 512, 12, 37)
    assert (data["seed"], data["model"], data["preset"], data["cache_hit"]) == (42, "tiny-wan", "fast", False)
    assert (data["storage_key"], data["content_type"], data["processing_ms"]) == ("npc-7/ab/abc.mp4", "video/mp4", 1234)


def test_events_without_metadata_name_no_generation():
    for metadata in (None, {"scene": "tavern"}):
        data = translated(0, metadata)["data"]
        assert data["generation_id"] is None and data["user_id"] is None
        assert data["metadata"] == metadata


def test_the_origin_is_the_operators_choice():
    event = EVENTS.validate_python(every_event()[0].model_dump(mode="json"))
    message = Pixsim7Format(origin="npc-video-eu").translate("game{npc}:events", "1-0", event)
    assert message["origin"] == "npc-video-eu"
    assert message["event_id"] == "game{npc}:events/1-0"
