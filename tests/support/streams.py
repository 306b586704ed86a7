"""Reading back what the worker wrote to Redis: events, results, dead letters, pending entries."""

from __future__ import annotations

import json
from typing import Any

import redis

from npc_video_client.names import GROUP, StreamNames


def events(client: redis.Redis, names: StreamNames, job_id: str | None = None) -> list[dict[str, Any]]:
    raw: Any = client.xrange(names.events)
    parsed = [json.loads(fields[b"event"]) for _id, fields in raw]
    return [event for event in parsed if job_id is None or event["job_id"] == job_id]


def event_types(client: redis.Redis, names: StreamNames, job_id: str) -> list[str]:
    return [event["type"] for event in events(client, names, job_id)]


def dead_letters(client: redis.Redis, names: StreamNames) -> list[dict[str, Any]]:
    raw: Any = client.xrange(names.dead)
    return [{"job": fields[b"job"], "error": json.loads(fields[b"error"])} for _id, fields in raw]


def pending_count(client: redis.Redis, names: StreamNames) -> int:
    total = 0
    for stream in names.lanes:
        if client.exists(stream):
            info: Any = client.xpending(stream, GROUP)
            total += int(info["pending"])
    return total


def create_groups(client: redis.Redis, names: StreamNames) -> None:
    """What a worker does at start, for tests that play a consumer before any worker runs."""
    for stream in names.lanes:
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)


FINAL_EVENTS = ("job:completed", "job:failed", "job:expired", "job:cancelled")


def final_events(client: redis.Redis, names: StreamNames, job_id: str) -> list[dict[str, Any]]:
    """The job's final events (a retryable job:failed is not final)."""
    return [
        event
        for event in events(client, names, job_id)
        if event["type"] in FINAL_EVENTS and not (event["type"] == "job:failed" and event["retryable"])
    ]


def runs(client: redis.Redis, names: StreamNames, job_id: str) -> list[tuple[str, int]]:
    """(worker, attempt) of every run of the job that got as far as its processing event."""
    return [(e["worker"], e["attempt"]) for e in events(client, names, job_id) if e["type"] == "job:processing"]
