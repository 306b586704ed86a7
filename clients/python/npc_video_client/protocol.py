"""What the synchronous and the asyncio client share: preparing a submission, reading results and events.

No I/O here: the clients send the commands, these functions decide what to send and what the replies mean.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from npc_video_client.client_errors import NpcVideoClientError, UnknownJob
from npc_video_client.clock import now_ms
from npc_video_client.contract import (
    CONTRACT_VERSION,
    JobEnvelope,
    JobEvent,
    JobFailedEvent,
    JobResult,
    JobState,
    JobStateStatus,
    JobStatus,
    describe_validation_error,
)
from npc_video_client.messages import quote
from npc_video_client.names import Lane

log = logging.getLogger(__name__)

DEFAULT_CANCEL_TTL_S = 24 * 3600
DEFAULT_STATE_TTL_S = 7 * 24 * 3600  # the worker's default result TTL (NPC_WORKER_RESULT_TTL_S)
# One blocking command never waits longer than this, far below the clients' socket timeout (30 s); longer waits
# are several commands in a row.
MAX_BLOCK_S = 10.0
MIN_BLOCK_S = 0.01  # BLMOVE's timeout 0 would mean "forever"
EVENT_TYPES = frozenset(
    {"job:processing", "job:progress", "job:preview", "job:completed", "job:failed", "job:expired", "job:cancelled"}
)
FINAL_EVENT_TYPES = frozenset({"job:completed", "job:expired", "job:cancelled"})  # and job:failed, not retryable
START_OF_STREAM = "0-0"

_EVENTS: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)


class JobRejected(NpcVideoClientError, ValueError):
    """The envelope would fail validation in the worker; raised before anything is enqueued."""


class CancelOutcome(StrEnum):
    """What `cancel()` did. CANCELLED: the request is set, the job ends `cancelled` at its next denoising step (or when
    a worker takes it), unless it completes first. ALREADY_ENDED: it has a final result or state; nothing was set.
    UNKNOWN: no state and no result; the request is set anyway (it expires), in case a client older than 1.2
    submitted the job."""

    CANCELLED = "cancelled"
    ALREADY_ENDED = "already_ended"
    UNKNOWN = "unknown"


_STATE_OF_RESULT = {
    JobStatus.COMPLETED: JobStateStatus.COMPLETED,
    JobStatus.FAILED: JobStateStatus.FAILED,
    JobStatus.EXPIRED: JobStateStatus.EXPIRED,
    JobStatus.CANCELLED: JobStateStatus.CANCELLED,
}


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


def ended_status(job_id: str, stored_result: bytes | str) -> str | None:
    """The status of a stored final result, or None when the result key holds no result: the worker does not count
    such a value as final (it runs the job and replaces it), so neither does a producer."""
    try:
        return parse_result(stored_result).status.value
    except ValidationError as exc:
        log.warning(
            "the result key of job %s holds no result (%s); the worker replaces it",
            job_id,
            describe_validation_error(exc),
        )
        return None


def queued_state(job_id: str) -> str:
    """The state JSON a producer writes with the job's XADD."""
    return JobState(job_id=job_id, status=JobStateStatus.QUEUED, updated_at=now_ms()).model_dump_json()


def state_from_result(result: JobResult) -> JobState:
    """The state of an ended job whose state key expired before its result (or was never written: a worker older
    than 1.2). Results carry no attempt count or writer: `attempt` is 0, `worker` null, `updated_at` the end of the
    device work when the result has it, else now."""
    completed = result.status == JobStatus.COMPLETED
    ended_at = result.timings.generate_ended_at
    return JobState(
        job_id=result.job_id,
        status=_STATE_OF_RESULT[result.status],
        progress=1.0 if completed else 0.0,
        step=result.steps if completed else None,
        steps=result.steps,
        updated_at=now_ms() if ended_at is None else int(ended_at),
        error_code=result.error_code,
        error_message=result.error_message,
    )


def resolve_state(job_id: str, stored_state: bytes | str | None, stored_result: bytes | str | None) -> JobState:
    """`status()`'s answer from the two keys: a final state as stored; a result without a final state (the state
    expired, or a worker older than 1.2 never wrote one) as derived from the result; UnknownJob when neither exists.
    A result key holding no result counts as no result, as for the worker."""
    state = None if stored_state is None else JobState.model_validate_json(stored_state)
    ended = stored_result is not None and ended_status(job_id, stored_result) is not None
    if stored_result is not None and ended and (state is None or not state.final):
        return state_from_result(parse_result(stored_result))
    if state is None:
        raise UnknownJob(job_id)
    return state


def cancel_outcome(job_id: str, stored_state: bytes | str | None, stored_result: bytes | str | None) -> CancelOutcome:
    if stored_result is not None and ended_status(job_id, stored_result) is not None:
        return CancelOutcome.ALREADY_ENDED
    if stored_state is None:
        return CancelOutcome.UNKNOWN
    return CancelOutcome.ALREADY_ENDED if JobState.model_validate_json(stored_state).final else CancelOutcome.CANCELLED


def check_state_ttl(seconds: int) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 1:
        raise ValueError(f"state_ttl_s: must be a whole number of seconds, at least 1 (got {quote(seconds)})")
    return seconds


def parse_lane(lane: Lane | str) -> Lane:
    try:
        return Lane(lane)
    except ValueError:
        raise ValueError(f"lane: must be high, normal or low (got {quote(lane)})") from None


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

    def end(self) -> None:
        """The chosen job ended and every entry written until then was read: its final event was among them, or was
        trimmed from the stream (or the stream was opened after the job ended). Nothing more will come."""
        self.finished = True
