"""The pixsim7 format: the envelope of pixsim7's Redis event bridge, `{event_type, data, timestamp, event_id, origin}`.

pixsim7's bridge (channel `pixsim7:events:v1`) re-publishes every message on its in-process event bus under
`event_type` with `data`, parses `timestamp` with `datetime.fromisoformat`, and drops messages whose `origin` is its
own. Its job events are `job:created`, `job:started`, `job:completed`, `job:failed` and `job:cancelled`; it keys
them by its numeric generation id and treats every `job:failed` as final. The mapping:

| worker event | pixsim7 `event_type` | `data.status` |
| --- | --- | --- |
| `job:processing` | `job:started` | processing |
| `job:progress` | `job:progress` | processing |
| `job:failed`, `retryable: true` | `job:retrying` (not final: another attempt follows) | pending |
| `job:failed`, `retryable: false` | `job:failed` | failed |
| `job:expired` | `job:failed` (`error_code` `deadline_exceeded`) | failed |
| `job:cancelled` | `job:cancelled` | cancelled |
| `job:completed` | `job:completed` | completed |

pixsim7 has no progress or retry event of its own: `job:progress` and `job:retrying` follow its `job:` naming, and
its bus passes unregistered types on (with a warning) to whoever subscribes to them; nothing of pixsim7 mistakes
them for a start or an end. `status` uses pixsim7's GenerationStatus values (a job waiting for its retry is
`pending` again, as pixsim7's own re-queued generations are).

Every `data` holds `job_id`, `generation_id` and `user_id` (from the job's `metadata`, null when absent), `status`,
`worker` and the whole `metadata`, then the fields of its type (docs/integrations/pixsim7.md lists them).
`event_id` is `{events stream}/{entry id}`: stable, so a message published again after a crash has the same id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from npc_video_client.contract import (
    ErrorCode,
    JobCancelledEvent,
    JobCompletedEvent,
    JobEvent,
    JobExpiredEvent,
    JobFailedEvent,
    JobProcessingEvent,
    JobProgressEvent,
)

DEFAULT_CHANNEL = "pixsim7:events:v1"
DEFAULT_ORIGIN = "npc-video-worker"
LIFTED_METADATA = ("generation_id", "user_id")  # pixsim7's keys, copied from metadata to the top of `data`


def iso_timestamp(unix_ms: int) -> str:
    """UTC with milliseconds and an explicit offset (`2026-11-26T10:00:00.123+00:00`), exact to the millisecond and
    readable by `datetime.fromisoformat` of every Python 3 pixsim7 may run (a `Z` suffix needs 3.11)."""
    seconds, millis = divmod(unix_ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=millis * 1000).isoformat(timespec="milliseconds")


def clip_ms(duration_sec: float | None) -> int | None:
    return None if duration_sec is None else round(duration_sec * 1000)


class Pixsim7Format:
    name = "pixsim7"
    default_channel = DEFAULT_CHANNEL

    def __init__(self, origin: str = DEFAULT_ORIGIN) -> None:
        self.origin = origin

    def translate(self, stream: str, entry_id: str, event: JobEvent) -> dict[str, Any]:
        event_type, status, fields = _mapped(event)
        metadata = event.metadata or {}
        data: dict[str, Any] = {
            "job_id": event.job_id,
            **{key: metadata.get(key) for key in LIFTED_METADATA},
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


def _mapped(event: JobEvent) -> tuple[str, str, dict[str, Any]]:
    """(pixsim7 event type, pixsim7 status, the fields of that type)."""
    if isinstance(event, JobProcessingEvent):
        fields: dict[str, Any] = {"attempt": event.attempt, "model": event.model, "preset": event.preset.value}
        return "job:started", "processing", fields
    if isinstance(event, JobProgressEvent):
        fields = {"progress": event.progress, "step": event.step, "total_steps": event.total_steps}
        return "job:progress", "processing", fields
    if isinstance(event, JobFailedEvent):
        fields = {
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
