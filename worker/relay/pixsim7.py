"""The pixsim7 format: the envelope of pixsim7's Redis event bridge, `{event_type, data, timestamp, event_id, origin}`.

pixsim7's bridge (channel `pixsim7:events:v1`) re-publishes every message on its in-process event bus under
`event_type` with `data`, parses `timestamp` with `datetime.fromisoformat`, and drops messages whose `origin` is its
own. Its generation events (`job:created|started|completed|failed|cancelled|paused|resumed|retrying`) are keyed by
the numeric generation id in `job_id` and `generation_id`; its WebSocket handler broadcasts exactly these types, and
the frontend patches the generation's status from the type (`job:started` -> processing). Its own status poller,
which reads the provider's `check_status`, is what moves a generation to an end and publishes the terminal event.

So by default (`events=progress`) only what pixsim7 can take without a generation changing state twice is published:
the worker's `job:processing` and `job:progress` as `job:started` (status `processing`, which the generation already
has) with `progress`, `step` and `total_steps`, at most one per `progress_interval_ms` per job (the last step
always). `events=all` adds the terminal mapping below for subscribers other than pixsim7's generations; pixsim7 then
gets every terminal event twice (its poller publishes its own), and its auto-retry listens to `job:failed`:

| worker event | `event_type` | `data.status` | published |
| --- | --- | --- | --- |
| `job:processing`, `job:progress` | `job:started` | processing | always (throttled) |
| `job:failed`, `retryable: true` | `job:retrying` | pending | `all` only |
| `job:failed`, `retryable: false`; `job:expired` | `job:failed` | failed | `all` only |
| `job:cancelled` | `job:cancelled` | cancelled | `all` only |
| `job:completed` | `job:completed` | completed | `all` only |

Every `data` holds `job_id` and `generation_id` (pixsim7's generation id, from the job's `metadata`), `npc_job_id`
(the worker's job id), `user_id`, `status`, `worker` and the whole `metadata`, then the fields of its type. Events of
jobs whose metadata has no integer `generation_id` are not pixsim7's: they are skipped. `event_id` is
`{events stream}/{entry id}`: stable, so a message published again after a crash has the same id.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from npc_video_client.contract import (
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobPreviewEvent,
    JobProcessingEvent,
    JobProgressEvent,
)
from npc_video_client.protocol import is_final

DEFAULT_CHANNEL = "pixsim7:events:v1"
DEFAULT_ORIGIN = "npc-video-worker"
DEFAULT_PROGRESS_INTERVAL_MS = 1_000
PROGRESS_TYPE = "job:started"  # registered by pixsim7 and broadcast to its UI; the generation is processing already
THROTTLED_JOBS_MAX = 10_000  # jobs whose last published progress is remembered (a job forgets at its final event)


class Pixsim7Events(StrEnum):
    PROGRESS = "progress"  # running jobs' progress only: pixsim7's poller owns every change of a generation's state
    ALL = "all"  # and the terminal events, for subscribers other than pixsim7's generations


def iso_timestamp(unix_ms: int) -> str:
    """UTC with milliseconds and an explicit offset (`2026-11-26T10:00:00.123+00:00`), exact to the millisecond and
    readable by `datetime.fromisoformat` of every Python 3 pixsim7 may run (a `Z` suffix needs 3.11)."""
    seconds, millis = divmod(unix_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000).isoformat(timespec="milliseconds")


def clip_ms(duration_sec: float | None) -> int | None:
    return None if duration_sec is None else round(duration_sec * 1000)


def generation_of(metadata: dict[str, Any] | None) -> int | None:
    """pixsim7's generation id from a job's metadata: an integer (JSON true/false is not one), else None."""
    value = (metadata or {}).get("generation_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ProgressThrottle:
    """At most one progress message per interval per job, timed by the events' own timestamps (so a relay catching up
    a backlog thins it as the worker wrote it); a job's first message and its last step always pass."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self._last: OrderedDict[str, int] = OrderedDict()

    def due(self, job_id: str, timestamp_ms: int, *, always: bool) -> bool:
        last = self._last.get(job_id)
        if not always and last is not None and timestamp_ms - last < self.interval_ms:
            return False
        self._last[job_id] = timestamp_ms
        self._last.move_to_end(job_id)
        if len(self._last) > THROTTLED_JOBS_MAX:
            self._last.popitem(last=False)
        return True

    def forget(self, job_id: str) -> None:
        self._last.pop(job_id, None)


class Pixsim7Format:
    name = "pixsim7"
    default_channel = DEFAULT_CHANNEL

    def __init__(
        self,
        origin: str = DEFAULT_ORIGIN,
        events: Pixsim7Events = Pixsim7Events.PROGRESS,
        progress_interval_ms: int = DEFAULT_PROGRESS_INTERVAL_MS,
    ) -> None:
        self.origin = origin
        self.events = events
        self.throttle = ProgressThrottle(progress_interval_ms)

    def translate(self, stream: str, entry_id: str, event: JobEvent) -> dict[str, Any] | None:
        generation_id = generation_of(event.metadata)
        if generation_id is None:
            return None
        mapped = self._mapped(event)
        if is_final(event):
            self.throttle.forget(event.job_id)
        if mapped is None:
            return None
        event_type, status, fields = mapped
        metadata = event.metadata or {}
        data: dict[str, Any] = {
            "job_id": generation_id,
            "generation_id": generation_id,
            "npc_job_id": event.job_id,
            "user_id": metadata.get("user_id"),
            "status": status,
            "worker": event.worker,
            "metadata": event.metadata,
            **fields,
        }
        return {
            "event_type": event_type,
            "data": data,
            "timestamp": iso_timestamp(event.timestamp),
            "event_id": f"{stream}/{entry_id}",
            "origin": self.origin,
        }

    def _mapped(self, event: JobEvent) -> tuple[str, str, dict[str, Any]] | None:
        """(pixsim7 event type, pixsim7 status, the fields of that type), or None when not published."""
        if isinstance(event, JobProcessingEvent):
            self.throttle.due(event.job_id, event.timestamp, always=True)  # a run begins: its progress starts over
            fields: dict[str, Any] = {
                "progress": 0.0, "step": 0, "total_steps": None,
                "attempt": event.attempt, "model": event.model, "preset": event.preset.value,
            }  # fmt: skip
            return PROGRESS_TYPE, "processing", fields
        if isinstance(event, JobProgressEvent):
            if not self.throttle.due(event.job_id, event.timestamp, always=event.step >= event.total_steps):
                return None
            fields = {"progress": event.progress, "step": event.step, "total_steps": event.total_steps}
            return PROGRESS_TYPE, "processing", fields
        if self.events is Pixsim7Events.PROGRESS or isinstance(event, JobPreviewEvent):
            return None  # previews are images for a game's own UI: pixsim7's bus has no type for them
        return _terminal(event)


def _terminal(
    event: JobFailedEvent | JobExpiredEvent | JobCancelledEvent | JobCompletedEvent,
) -> tuple[str, str, dict[str, Any]]:
    if isinstance(event, JobFailedEvent):
        fields: dict[str, Any] = {
            "error": event.error_message,
            "error_code": event.error_code.value,
            "attempt": event.attempt,
            "retryable": event.retryable,
        }
        return ("job:retrying", "pending", fields) if event.retryable else ("job:failed", "failed", fields)
    if isinstance(event, JobExpiredEvent):
        deadline = "" if event.deadline is None else f" ({iso_timestamp(event.deadline)})"
        fields = {
            "error": f"deadline exceeded: the job's deadline{deadline} passed before it was generated",
            "error_code": ErrorCode.DEADLINE_EXCEEDED.value,
            "attempt": None,
            "retryable": False,
            "deadline": event.deadline,
        }
        return "job:failed", "failed", fields
    if isinstance(event, JobCancelledEvent):
        return "job:cancelled", "cancelled", {"error": None}
    return "job:completed", "completed", _completed(event)


def _completed(event: JobCompletedEvent) -> dict[str, Any]:
    return {
        "result_url": event.url,
        "video_url": event.url,
        "thumbnail_url": event.thumbnail_url,
        "duration": clip_ms(event.duration_sec),
        "duration_sec": event.duration_sec,
        "width": event.width,
        "height": event.height,
        "fps": event.fps,
        "num_frames": event.num_frames,
        "content_type": event.content_type,
        "storage_key": event.storage_key,
        "seed": event.seed,
        "model": event.model,
        "preset": None if event.preset is None else event.preset.value,
        "cache_hit": event.cache_hit,
        "processing_ms": round(event.timings.total_ms),
        "error": None,
    }
