"""The npc_response wire contract (docs/contract.md) as pydantic models.

Producers may import this module: it depends on pydantic only, never on torch.
Field names are exactly those producers already send; do not rename them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from npc_video_client.messages import quote

CONTRACT_VERSION = 1
OPERATION_TYPE = "npc_response"
JOB_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
LORA_REF_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?::(?P<weight>[-+]?\d+(?:\.\d+)?))?$")
LORA_WEIGHT_RANGE = (-2.0, 2.0)


class ErrorCode(StrEnum):
    INVALID_PARAMS = "invalid_params"
    INVALID_IMAGE = "invalid_image"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_LORA = "unknown_lora"
    OUT_OF_MEMORY = "out_of_memory"
    STORAGE_ERROR = "storage_error"
    INTERNAL_ERROR = "internal_error"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"


RETRYABLE_CODES = frozenset({ErrorCode.OUT_OF_MEMORY, ErrorCode.STORAGE_ERROR, ErrorCode.INTERNAL_ERROR})


class QualityPreset(StrEnum):
    REALTIME = "realtime"
    FAST = "fast"
    BALANCED = "balanced"
    QUALITY = "quality"


class ArtStyle(StrEnum):
    ANIME = "anime"
    REALISTIC = "realistic"
    SEMI_REALISTIC = "semi-realistic"


class JobStatus(StrEnum):
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


def parse_lora_ref(ref: str) -> tuple[str, float | None]:
    """Split `name` or `name:weight`; the weight must lie in -2..2. Raises ValueError naming the problem."""
    match = LORA_REF_PATTERN.match(ref.strip())
    if match is None:
        raise ValueError(
            f"LoRA reference {quote(ref)} is not 'name' or 'name:weight' "
            "(name: letters, digits, . _ -; weight: a number)"
        )
    weight_text = match.group("weight")
    if weight_text is None:
        return match.group("name"), None
    weight = float(weight_text)
    low, high = LORA_WEIGHT_RANGE
    if not low <= weight <= high:
        raise ValueError(f"LoRA weight {weight} in {quote(ref)} is outside {low}..{high}")
    return match.group("name"), weight


def _json_number(value: Any) -> Any:
    """Numbers must be JSON numbers: pydantic would otherwise read true/false as 1/0 and "12" or "0.5" as numbers,
    and a producer sending strings has a bug that a silent conversion hides (a string deadline expired jobs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a JSON number, not {_json_kind(value)}")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


JsonNumber = BeforeValidator(_json_number)


class NpcResponseParams(BaseModel):
    """Parameters of an npc_response job. Unknown extra fields are ignored (forward compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    npc_id: Annotated[str, Field(min_length=1, max_length=256)]
    npc_name: Annotated[str, Field(min_length=1, max_length=256)]
    npc_base_image: Annotated[str | None, Field(min_length=1)] = None
    expression: Annotated[str, Field(max_length=200)]
    emotion: Annotated[str, Field(max_length=200)]
    animation: Annotated[str, Field(max_length=200)]
    intensity: Annotated[float, Field(ge=0.0, le=1.0), JsonNumber]
    art_style: ArtStyle | None = None
    loras: Annotated[list[str], Field(max_length=8)] = Field(default_factory=list)
    prompt: Annotated[str | None, Field(max_length=2000)] = None
    negative_prompt: Annotated[str | None, Field(max_length=2000)] = None
    quality_preset: QualityPreset = QualityPreset.FAST
    width: Annotated[int, Field(ge=16, le=2048), JsonNumber] | None = None
    height: Annotated[int, Field(ge=16, le=2048), JsonNumber] | None = None
    fps: Annotated[int, Field(ge=1, le=60), JsonNumber] | None = None
    duration: Annotated[float, Field(gt=0.0, le=20.0), JsonNumber] | None = None
    steps: Annotated[int, Field(ge=1, le=200), JsonNumber] | None = None
    cfg: Annotated[float, Field(ge=0.0, le=30.0), JsonNumber] | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1), JsonNumber] | None = None

    @field_validator("loras")
    @classmethod
    def _check_lora_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parse_lora_ref(ref)
        return refs


class JobEnvelope(BaseModel):
    """One job: the JSON value of field `job` of a stream entry."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    operation_type: Literal["npc_response"]
    params: NpcResponseParams
    deadline: Annotated[int, Field(ge=0, description="unix epoch milliseconds"), JsonNumber] | None = None
    submitted_at: Annotated[int, Field(ge=0, description="unix epoch milliseconds"), JsonNumber] | None = None


class AppliedLora(BaseModel):
    name: str
    weight: float


class Timings(BaseModel):
    """Milliseconds per phase. `load_ms` and `swap_ms` are parts of `prepare_ms`: reading this job's model from
    disk, and moving it back onto the device from CPU memory (each including making room for it); 0 when the
    model was already on the device."""

    queue_ms: float | None = None
    prepare_ms: float = 0.0
    load_ms: float = 0.0
    swap_ms: float = 0.0
    generate_ms: float = 0.0
    encode_ms: float = 0.0
    upload_ms: float = 0.0
    total_ms: float = 0.0


class JobResult(BaseModel):
    """The final result: stored at `{prefix}:result:{job_id}` and carried by job:completed."""

    job_id: str
    status: Literal[JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED]
    url: str | None = None
    thumbnail_url: str | None = None
    storage_key: str | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    num_frames: int | None = None
    duration_sec: float | None = None
    seed: int | None = None
    model: str | None = None
    preset: QualityPreset | None = None
    loras: list[AppliedLora] = Field(default_factory=list)
    prompt: str | None = None
    negative_prompt: str | None = None
    steps: int | None = None
    cfg: float | None = None
    timings: Timings = Field(default_factory=Timings)
    gpu_seconds: float = 0.0
    cache_hit: bool = False
    error_code: ErrorCode | None = None
    error_message: str | None = None


class _EventBase(BaseModel):
    job_id: str
    timestamp: int = Field(description="unix epoch milliseconds")
    worker: str


class JobProcessingEvent(_EventBase):
    type: Literal["job:processing"] = "job:processing"
    status: Literal[JobStatus.PROCESSING] = JobStatus.PROCESSING
    attempt: int
    model: str
    preset: QualityPreset


class JobProgressEvent(_EventBase):
    type: Literal["job:progress"] = "job:progress"
    status: Literal[JobStatus.PROCESSING] = JobStatus.PROCESSING
    step: int
    total_steps: int
    progress: Annotated[float, Field(ge=0.0, le=1.0)]


class JobCompletedEvent(JobResult, _EventBase):
    type: Literal["job:completed"] = "job:completed"
    status: Literal[JobStatus.COMPLETED] = JobStatus.COMPLETED


class JobFailedEvent(_EventBase):
    type: Literal["job:failed"] = "job:failed"
    status: Literal[JobStatus.FAILED] = JobStatus.FAILED
    error_code: ErrorCode
    error_message: str
    retryable: bool
    attempt: int


class JobExpiredEvent(_EventBase):
    type: Literal["job:expired"] = "job:expired"
    status: Literal[JobStatus.EXPIRED] = JobStatus.EXPIRED
    deadline: int | None


class JobCancelledEvent(_EventBase):
    type: Literal["job:cancelled"] = "job:cancelled"
    status: Literal[JobStatus.CANCELLED] = JobStatus.CANCELLED


JobEvent = Annotated[
    JobProcessingEvent | JobProgressEvent | JobCompletedEvent | JobFailedEvent | JobExpiredEvent | JobCancelledEvent,
    Field(discriminator="type"),
]


def describe_validation_error(error: ValidationError, root: str = "") -> str:
    """One line per problem, each naming the field path, the rule and the offending value."""
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (root, *item["loc"]) if part != "")
        shown = "" if item["type"] == "missing" else f" (got {quote(item.get('input'))})"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{path or 'job'}: {message}{shown}")
    return "; ".join(problems)


def peek_job_id(payload: Any) -> str | None:
    """The job_id of a payload that may fail validation, if it is usable as one (for failed results)."""
    if isinstance(payload, dict):
        job_id = payload.get("job_id")
        if isinstance(job_id, str) and re.fullmatch(JOB_ID_PATTERN, job_id):
            return job_id
    return None
