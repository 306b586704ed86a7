"""What the relay tests share: one event of every type as the worker writes them, and a pub/sub subscriber."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis
from pydantic import BaseModel

from npc_video_client.contract import (
    JobCancelledEvent,
    JobCompletedEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobProcessingEvent,
    JobProgressEvent,
    Timings,
)

CHANNEL = "pixsim7:events:v1"
METADATA = {"generation_id": 4711, "user_id": 3, "scene": "tavern"}
STAMP = 1_764_079_990_123  # 2025-11-25T14:13:10.123+00:00


def every_event(job_id: str = "j-1", metadata: dict[str, Any] | None = METADATA) -> list[BaseModel]:
    """One event of each type, in the order a job could emit them (a retried failure before the final one)."""
    base: dict[str, Any] = {"job_id": job_id, "timestamp": STAMP, "worker": "gpu-a:cuda", "metadata": metadata}
    return [
        JobProcessingEvent(**base, attempt=1, model="tiny-wan", preset="realtime"),
        JobProgressEvent(**base, step=1, total_steps=4, progress=0.25),
        JobFailedEvent(**base, error_code="out_of_memory", error_message="CUDA OOM", retryable=True, attempt=1),
        JobFailedEvent(**base, error_code="storage_error", error_message="upload failed", retryable=False, attempt=3),
        JobExpiredEvent(**base, deadline=STAMP - 1_000),
        JobCancelledEvent(**base),
        JobCompletedEvent(
            **base,
            url="https://videos.example.com/npc-7/ab/abc.mp4",
            thumbnail_url="https://videos.example.com/npc-7/ab/abc.jpg",
            storage_key="npc-7/ab/abc.mp4",
            content_type="video/mp4",
            width=512,
            height=512,
            fps=12,
            num_frames=37,
            duration_sec=37 / 12,
            seed=42,
            model="tiny-wan",
            preset="fast",
            timings=Timings(total_ms=1234.4),
        ),
    ]


class Subscriber:
    """A pub/sub subscriber to one channel, subscribed before anything is published."""

    def __init__(self, url: str, channel: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.pubsub = self.client.pubsub()
        self.pubsub.subscribe(channel)
        confirmation = self.pubsub.get_message(timeout=5)  # once the server confirms, every PUBLISH reaches us
        assert confirmation is not None and confirmation["type"] == "subscribe", confirmation

    def take(self, count: int, timeout_s: float = 20) -> list[dict[str, Any]]:
        """The next `count` messages, parsed; fails when fewer arrive in time."""
        return self.take_until(lambda messages: len(messages) >= count, timeout_s)

    def take_until(self, done: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 60) -> list[dict[str, Any]]:
        """Messages until `done(messages so far)` holds; fails when it does not in time."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while not done(messages):
            left = deadline - time.monotonic()
            assert left > 0, f"gave up waiting after {timeout_s} s; got {messages}"
            message = self.pubsub.get_message(timeout=min(left, 1.0))
            if message is not None and message["type"] == "message":
                messages.append(json.loads(message["data"]))
        return messages

    def nothing_more(self, wait_s: float = 0.5) -> None:
        message = self.pubsub.get_message(timeout=wait_s)
        assert message is None, message

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()
