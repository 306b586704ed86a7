"""Reading a job from untrusted bytes: the one place where a stream entry's payload becomes a JobEnvelope.

Whatever the bytes are (not JSON, NaN, nested ten thousand levels deep, megabytes of one string, a number where
an object belongs), the outcome is a `ReadJob` whose error is `invalid_params` with a message that names the
problem: reading a payload never raises, so no payload can stop a worker or make an entry linger.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from npc_video_client.contract import (
    OPERATION_TYPE,
    ErrorCode,
    JobEnvelope,
    describe_validation_error,
    peek_job_id,
    peek_metadata,
)
from npc_video_client.errors import JobError
from npc_video_client.messages import quote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadJob:
    """`job_id` is the envelope's when it has a usable one, else the caller's fallback (`unknown:...`);
    `metadata` the envelope's, when it is valid itself (echoed in the events and result of a refused job)."""

    job_id: str
    has_job_id: bool = False  # False: `job_id` is the fallback; no result key exists for this entry
    envelope: JobEnvelope | None = None
    error: JobError | None = None
    metadata: dict[str, Any] | None = None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(payload: str | bytes) -> Any:
    """Strict JSON (no NaN/Infinity); every decoding failure is invalid_params."""
    try:
        return json.loads(payload, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise JobError(ErrorCode.INVALID_PARAMS, "job is nested too deeply to be a job envelope") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
        raise JobError(ErrorCode.INVALID_PARAMS, f"job is not valid JSON: {exc}") from exc


def parse_envelope(document: Any) -> JobEnvelope:
    """Validate a decoded envelope with messages that name the offending field, the rule and the value."""
    if not isinstance(document, dict):
        raise JobError(ErrorCode.INVALID_PARAMS, f"job must be a JSON object, got {quote(document)}")
    if document.get("operation_type") != OPERATION_TYPE:
        raise JobError(
            ErrorCode.INVALID_PARAMS,
            f"operation_type: {quote(document.get('operation_type'))} is not supported; "
            f"expected {quote(OPERATION_TYPE)}",
        )
    try:
        return JobEnvelope.model_validate(document)
    except ValidationError as exc:
        raise JobError(ErrorCode.INVALID_PARAMS, describe_validation_error(exc)) from exc


def read_job(payload: Any, fallback_id: str, max_bytes: int) -> ReadJob:
    """Never raises: the envelope, or the invalid_params error that ends this payload's entry. `payload` is JSON
    text (str or bytes), or an already decoded document (in-process callers)."""
    job_id = fallback_id
    metadata: dict[str, Any] | None = None
    peeked: str | None = None
    try:
        if payload is None:
            raise JobError(ErrorCode.INVALID_PARAMS, "stream entry has no field 'job'")
        if not isinstance(payload, (str, bytes)):
            document = payload
        elif len(payload) > max_bytes:
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"job is {len(payload)} bytes, over the limit of {max_bytes} (NPC_WORKER_MAX_JOB_BYTES); "
                "send large base images by reference (s3:// or https://)",
            )
        else:
            document = decode_json(payload)
        peeked = peek_job_id(document)
        job_id = peeked or fallback_id
        metadata = peek_metadata(document)
        envelope = parse_envelope(document)
        return ReadJob(job_id, True, envelope=envelope, metadata=envelope.metadata)
    except JobError as invalid:
        return ReadJob(job_id, peeked is not None, error=invalid, metadata=metadata)
    except Exception as exc:  # a validator or library bug on hostile input must still end as this job's error
        log.warning("job %s: unexpected %s while reading its payload", job_id, type(exc).__name__, exc_info=exc)
        error = JobError(ErrorCode.INVALID_PARAMS, f"job cannot be read ({type(exc).__name__})")
        return ReadJob(job_id, peeked is not None, error=error, metadata=metadata)
