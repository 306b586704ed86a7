"""What the synchronous and the asyncio client share: preparing a submission, reading results and events.

No I/O here: the clients send the commands, these functions decide what to send and what the replies mean.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from npc_video_client.clock import now_ms
from npc_video_client.contract import (
    CONTRACT_VERSION,
    JobEnvelope,
    JobEvent,
    JobFailedEvent,
    JobResult,
    describe_validation_error,
)

log = logging.getLogger(__name__)

DEFAULT_JOBS_MAXLEN = 100_000
DEFAULT_CANCEL_TTL_S = 24 * 3600
# One blocking command never waits longer than this, far below the clients' socket timeout (30 s); longer waits
# are several commands in a row.
MAX_BLOCK_S = 10.0
MIN_BLOCK_S = 0.01  # BLMOVE's timeout 0 would mean "forever"
EVENT_TYPES = frozenset(
    {"job:processing", "job:progress", "job:completed", "job:failed", "job:expired", "job:cancelled"}
)
FINAL_EVENT_TYPES = frozenset({"job:completed", "job:expired", "job:cancelled"})  # and job:failed, not retryable
START_OF_STREAM = "0-0"

_EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)


class JobRejected(ValueError):
    """The envelope would fail validation in the worker; raised before anything is enqueued."""


@dataclass(frozen=True)
class NotFinal:
    """`status()` of a job without a final result: queued (attempts 0), running, or waiting for a retry.
    A job id the worker never saw looks queued too: Redis keeps no record of entries not yet read."""

    job_id: str
    attempts: int  # runs started so far (`{prefix}:attempts:{job_id}`)
    running: bool  # a worker holds the job's lock now (`{prefix}:running:{job_id}`)


def prepare_submission(envelope: dict[str, Any] | JobEnvelope) -> tuple[str, str]:
    """Stamp `contract_version` and `submitted_at` when absent, validate with the contract models, and return the
    job id and the JSON text of field `job`. JobRejected names every problem."""
    if isinstance(envelope, JobEnvelope):
        body = envelope.model_dump(mode="json", exclude_none=True)
    elif isinstance(envelope, dict):
        body = dict(envelope)
    else:
        raise JobRejected(f"job: must be a JSON object (a dict or a JobEnvelope), not {type(envelope).__name__}")
    body.setdefault("contract_version", CONTRACT_VERSION)
    body.setdefault("submitted_at", now_ms())
    try:
        checked = JobEnvelope.model_validate(body)
    except ValidationError as exc:
        raise JobRejected(describe_validation_error(exc)) from exc
    try:
        text = json.dumps(body, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:  # an unknown extra field holding something that is not JSON
        raise JobRejected(f"job: cannot be written as JSON: {exc}") from exc
    return checked.job_id, text


def parse_result(stored: bytes | str) -> JobResult:
    return JobResult.model_validate_json(stored)


def block_seconds(limit_s: float, remaining_s: float) -> float:
    """How long one blocking command may wait: within the caller's limit and what is left of its timeout."""
    return max(MIN_BLOCK_S, min(limit_s, remaining_s, MAX_BLOCK_S))


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def no_such_key(error: Exception) -> bool:
    """XINFO STREAM's reply for a stream that does not exist (yet)."""
    return "no such key" in str(error).lower()


def is_final(event: JobEvent) -> bool:
    """The job's last event: completed, expired, cancelled, or a failure that will not be retried."""
    if isinstance(event, JobFailedEvent):
        return not event.retryable
    return event.type in FINAL_EVENT_TYPES


def not_final(job_id: str, attempts: bytes | str | None, running: int) -> NotFinal:
    return NotFinal(job_id=job_id, attempts=int(text(attempts)) if attempts is not None else 0, running=running > 0)


class EventReader:
    """Turns XREAD entries of the events stream into contract events: keeps the cursor (the id of the last entry
    consumed, whatever it held), picks one job's events when asked, and skips what this client does not know (event
    types of a newer contract minor, events that do not parse) with a log line, as the contract asks of
    clients. `finished` turns true after the chosen job's final event."""

    def __init__(self, cursor: str, job_id: str | None) -> None:
        self.cursor = cursor
        self.job_id = job_id
        self.finished = False

    def read(self, entry_id: bytes | str, fields: dict[Any, Any]) -> JobEvent | None:
        if self.finished:  # entries after the job's final event stay unread: the cursor stops at that event
            return None
        self.cursor = text(entry_id)
        raw = fields.get(b"event", fields.get("event"))
        if raw is None:
            log.warning("events entry %s has no field 'event'; skipped", self.cursor)
            return None
        try:
            document = json.loads(raw)
        except ValueError as exc:
            log.warning("events entry %s is not JSON (%s); skipped", self.cursor, exc)
            return None
        if not isinstance(document, dict):
            log.warning("events entry %s is not a JSON object; skipped", self.cursor)
            return None
        if self.job_id is not None and document.get("job_id") != self.job_id:
            return None
        if document.get("type") not in EVENT_TYPES:
            log.debug("events entry %s has type %r, unknown to this client; skipped", self.cursor, document.get("type"))
            return None
        try:
            event = _EVENTS.validate_python(document)
        except ValidationError as exc:
            log.warning("events entry %s does not parse (%s); skipped", self.cursor, describe_validation_error(exc))
            return None
        if self.job_id is not None and is_final(event):
            self.finished = True
        return event
