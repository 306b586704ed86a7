"""The npc_response wire contract (docs/contract.md) as pydantic models.

Producers may import this module: it depends on pydantic only, never on torch.
Field names are exactly those producers already send; do not rename them.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from npc_video_client.messages import quote

CONTRACT_VERSION = "1.2"
CONTRACT_MAJOR = 1
CONTRACT_VERSION_PATTERN = r"^[0-9]+\.[0-9]+$"
OPERATION_TYPE = "npc_response"
JOB_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
SEED_MAX = 2**63 - 1
JSON_SAFE_INTEGER_MAX = 2**53 - 1  # Number.MAX_SAFE_INTEGER: the largest seed a JavaScript producer sends exactly

# LoRA references, `name` or `name:weight` with the weight in -2..2. The patterns are ECMAScript- and Python-safe
# (ASCII classes, no \d or \s, whose meaning differs between the two) so the JSON Schema says exactly what the
# worker accepts: LORA_REF_PATTERN is the rule itself, range included; the other two only tell the shape from
# the range in error messages. Surrounding whitespace (what Python's str.strip() removes) is allowed.
LORA_WEIGHT_RANGE = (-2.0, 2.0)
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*"
_LORA_NAME = r"[A-Za-z0-9._-]+"
_LORA_WEIGHT = r"[-+]?[0-9]+(?:\.[0-9]+)?"
_LORA_WEIGHT_IN_RANGE = r"[-+]?0*(?:[01](?:\.[0-9]+)?|2(?:\.0+)?)"
LORA_REF_PATTERN = f"^{_SPACE}{_LORA_NAME}(?::{_LORA_WEIGHT_IN_RANGE})?{_SPACE}$"
_LORA_SHAPE = re.compile(f"{_SPACE}(?P<name>{_LORA_NAME})(?::(?P<weight>{_LORA_WEIGHT}))?{_SPACE}")
_LORA_WEIGHT_OK = re.compile(_LORA_WEIGHT_IN_RANGE)

# Envelope metadata: the producer's own small JSON object, echoed in every event and in the result.
METADATA_MAX_BYTES = 4096
METADATA_MAX_KEYS = 32
METADATA_MAX_DEPTH = 4


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
    match = _LORA_SHAPE.fullmatch(ref)
    if match is None:
        raise ValueError(
            f"LoRA reference {quote(ref)} is not 'name' or 'name:weight' "
            "(name: letters, digits, . _ -; weight: a decimal number such as 0.5)"
        )
    weight_text = match.group("weight")
    if weight_text is None:
        return match.group("name"), None
    if _LORA_WEIGHT_OK.fullmatch(weight_text) is None:
        low, high = LORA_WEIGHT_RANGE
        raise ValueError(f"LoRA weight {weight_text} in {quote(ref)} is outside {low}..{high}")
    return match.group("name"), float(weight_text)


def check_contract_version(version: str) -> str:
    """Same major: compatible (a newer minor only adds optional fields, which this side ignores)."""
    if re.fullmatch(CONTRACT_VERSION_PATTERN, version) is None:
        raise ValueError(f'must be "MAJOR.MINOR", e.g. "{CONTRACT_VERSION}"')
    major = int(version.split(".", maxsplit=1)[0])
    if major != CONTRACT_MAJOR:
        raise ValueError(
            f"major version {major} is not spoken here: this worker speaks contract {CONTRACT_VERSION} "
            f"(any {CONTRACT_MAJOR}.x is accepted; leave contract_version out to mean 1.0)"
        )
    return version


def check_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Small enough to be copied into every event: a few ids and labels, not a payload."""
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValueError(
            f"has {len(metadata)} keys, over the limit of {METADATA_MAX_KEYS}; keep ids and short labels here"
        )
    depth = _json_depth(metadata, METADATA_MAX_DEPTH + 1)
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(
            f"is nested more than {METADATA_MAX_DEPTH} levels deep (the object itself is level 1); flatten it"
        )
    try:
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"must hold JSON values only (strings, numbers, true/false, null, arrays, objects): {exc}"
        ) from exc
    if size > METADATA_MAX_BYTES:
        raise ValueError(
            f"is {size} bytes as compact JSON, over the limit of {METADATA_MAX_BYTES}; "
            "keep ids and short labels here and large data in your own store"
        )
    return metadata


def _json_depth(value: Any, stop_at: int) -> int:
    """Nesting depth of objects and arrays (a scalar is 0), counted no further than `stop_at`."""
    if not isinstance(value, (dict, list, tuple)) or stop_at <= 0:
        return 0
    children = value.values() if isinstance(value, dict) else value
    return 1 + max((_json_depth(child, stop_at - 1) for child in children), default=0)


def peek_metadata(payload: Any) -> dict[str, Any] | None:
    """The metadata of a payload that may fail validation, when it is valid itself (echoed in failed results)."""
    if isinstance(payload, dict):
        metadata = payload.get("metadata")
        if isinstance(metadata, dict) and all(isinstance(key, str) for key in metadata):
            try:
                return check_metadata(metadata)
            except ValueError:
                return None
    return None


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

LoraRef = Annotated[
    str,
    Field(
        description="a catalog LoRA name, optionally with a weight: 'name' or 'name:weight', weight in -2..2",
        json_schema_extra={"pattern": LORA_REF_PATTERN},
    ),
]
SEED_DESCRIPTION = (
    "0..2^63-1. JSON producers whose numbers are IEEE doubles (JavaScript) can send exactly only "
    "0..2^53-1 (Number.MAX_SAFE_INTEGER): larger integers are rounded before they are sent. "
    "Absent: a 32-bit seed derived from npc_id."
)
Metadata = Annotated[
    dict[str, Any],
    Field(json_schema_extra={"maxProperties": METADATA_MAX_KEYS}),
]
ContractVersion = Annotated[str, Field(json_schema_extra={"pattern": rf"^{CONTRACT_MAJOR}\.[0-9]+$"})]
VERSION_DESCRIPTION = (
    f'The contract version the producer speaks, e.g. "{CONTRACT_VERSION}". A different major is refused with '
    "invalid_params; absent: 1.0."
)
METADATA_DESCRIPTION = (
    f"The producer's own JSON object (ids, labels), echoed unchanged in every event and in the result. At most "
    f"{METADATA_MAX_KEYS} keys, {METADATA_MAX_DEPTH} levels deep (the object is level 1) and {METADATA_MAX_BYTES} "
    "bytes as compact UTF-8 JSON."
)


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
    loras: Annotated[list[LoraRef], Field(max_length=8)] = Field(default_factory=list)
    prompt: Annotated[str | None, Field(max_length=2000)] = None
    negative_prompt: Annotated[str | None, Field(max_length=2000)] = None
    quality_preset: QualityPreset = QualityPreset.FAST
    width: Annotated[int, Field(ge=16, le=2048), JsonNumber] | None = None
    height: Annotated[int, Field(ge=16, le=2048), JsonNumber] | None = None
    fps: Annotated[int, Field(ge=1, le=60), JsonNumber] | None = None
    duration: Annotated[float, Field(gt=0.0, le=20.0), JsonNumber] | None = None
    steps: Annotated[int, Field(ge=1, le=200), JsonNumber] | None = None
    cfg: Annotated[float, Field(ge=0.0, le=30.0), JsonNumber] | None = None
    seed: Annotated[
        Annotated[int, Field(ge=0, le=SEED_MAX), JsonNumber] | None, Field(description=SEED_DESCRIPTION)
    ] = None

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
    contract_version: Annotated[ContractVersion | None, Field(description=VERSION_DESCRIPTION)] = None
    metadata: Annotated[Metadata | None, Field(description=METADATA_DESCRIPTION)] = None
    preview: bool = Field(
        default=False,
        description="1.2: send job:preview events, small animated images of the video as it denoises "
        "(never for warm jobs)",
    )

    @field_validator("contract_version")
    @classmethod
    def _check_contract_version(cls, version: str | None) -> str | None:
        return None if version is None else check_contract_version(version)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if metadata is None else check_metadata(metadata)


class AppliedLora(BaseModel):
    name: str
    weight: float


class Timings(BaseModel):
    """Milliseconds per phase. `load_ms` and `swap_ms` are parts of `prepare_ms`: reading this job's model from
    disk, and moving it back onto the device from CPU memory (each including making room for it); 0 when the
    model was already on the device. `condition_ms` (1.1) is the text and image encoding, part of `generate_ms`
    (near 0 when a repeated job's prompt and image were cached). `generate_started_at` / `generate_ended_at` (1.1,
    unix ms with decimals) bound the device work, for utilisation figures across jobs."""

    queue_ms: float | None = None
    prepare_ms: float = 0.0
    load_ms: float = 0.0
    swap_ms: float = 0.0
    generate_ms: float = 0.0
    condition_ms: float = 0.0
    encode_ms: float = 0.0
    upload_ms: float = 0.0
    total_ms: float = 0.0
    generate_started_at: float | None = None
    generate_ended_at: float | None = None


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
    generated_frames: int | None = None
    generated_fps: int | None = None
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
    batch_size: int | None = None  # 1.1: jobs that ran through the denoiser together with this one (1: alone)
    error_code: ErrorCode | None = None
    error_message: str | None = None
    contract_version: str | None = Field(
        default=None, description="the contract version of the worker that wrote it; absent or null: 1.0"
    )
    metadata: dict[str, Any] | None = Field(default=None, description="the envelope's metadata, unchanged")


class JobStateStatus(StrEnum):
    """Where a job stands (1.2), in `{prefix}:state:{job_id}`: the first two and `retrying` are not final."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINAL_STATE_STATUSES = frozenset(
    {JobStateStatus.COMPLETED, JobStateStatus.FAILED, JobStateStatus.CANCELLED, JobStateStatus.EXPIRED}
)


class JobState(BaseModel):
    """The per-job state (1.2): a small JSON string at `{prefix}:state:{job_id}` with the result's TTL, written
    `queued` by the client at submit (in the transaction of the XADD), then by the worker when a run begins, at most
    once per progress interval while it runs, on a retryable failure and in the job's terminal write. A producer
    polls this one key instead of following the events stream. Unknown fields are ignored (forward compatibility)."""

    # Every writer writes every field: the schema (of what is stored, serialization mode) requires them all.
    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_serialization_defaults_required=True)

    job_id: str
    status: JobStateStatus
    progress: Annotated[float, Field(ge=0.0, le=1.0, description="0..1; 1.0 once completed")] = 0.0
    step: int | None = Field(default=None, description="the last denoising step reported (1-based)")
    steps: int | None = Field(default=None, description="denoising steps of the run")
    attempt: int = Field(default=0, ge=0, description="runs started so far; 0 while queued")
    updated_at: int = Field(description="unix epoch milliseconds of this write")
    worker: str | None = Field(default=None, description="the consumer that wrote it; null from a producer")
    error_code: ErrorCode | None = None
    error_message: str | None = None
    contract_version: str = Field(default=CONTRACT_VERSION, description="the version of the writer")

    @property
    def final(self) -> bool:
        """The job has ended: completed, failed (for good), cancelled or expired."""
        return self.status in FINAL_STATE_STATUSES


def _require_type_and_status(schema: dict[str, Any]) -> None:
    """Every event on the wire carries `type` and `status` (the models fill them in): the schema says so, and
    strict validators and generated TypeScript types get a required discriminator."""
    required = schema.setdefault("required", [])
    required.extend(name for name in ("type", "status") if name not in required)


class _EventBase(BaseModel):
    """Fields of every event. `metadata` (1.1) is the envelope's, echoed; null when the job had none (or its
    payload could not be read)."""

    model_config = ConfigDict(json_schema_extra=_require_type_and_status)

    job_id: str
    timestamp: int = Field(description="unix epoch milliseconds")
    worker: str
    metadata: dict[str, Any] | None = Field(default=None, description="the envelope's metadata, unchanged")


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


class JobPreviewEvent(_EventBase):
    """1.2: what the video looks like at this step (the model's prediction of the clean video, without the VAE), for a
    job whose envelope asked with `preview: true`: an animated image inline (`data`, base64), a few kilobytes."""

    type: Literal["job:preview"] = "job:preview"
    status: Literal[JobStatus.PROCESSING] = JobStatus.PROCESSING
    step: int
    total_steps: int
    mime: Literal["image/webp"] = "image/webp"
    data: str = Field(description="the image, base64")
    width: int
    height: int
    frames: int = Field(description="frames of the animated image (latent frames of the video)")
    fps: float = Field(description="its frame rate: the video's duration over its frames")


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
    JobProcessingEvent
    | JobProgressEvent
    | JobPreviewEvent
    | JobCompletedEvent
    | JobFailedEvent
    | JobExpiredEvent
    | JobCancelledEvent,
    Field(discriminator="type"),
]


def describe_validation_error(error: ValidationError, root: str = "") -> str:
    """One line per problem, each naming the field path, the rule and the offending value."""
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(_path_part(part) for part in (root, *item["loc"]) if part != "")
        shown = "" if item["type"] == "missing" else f" (got {quote(item.get('input'))})"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{path or 'job'}: {message}{shown}")
    return "; ".join(problems)


_OBJECT_REPR = re.compile(r"<(?:\w+\.)*(\w+) object at 0x[0-9a-fA-F]+>")


def _path_part(part: Any) -> str:
    """A field name or index as written. A dict key that was not a string (a producer's object used as a key) reaches
    pydantic's error path as its Python repr, address included: it is named by its kind instead."""
    return _OBJECT_REPR.sub(r"<\1>", str(part))


def peek_job_id(payload: Any) -> str | None:
    """The job_id of a payload that may fail validation, if it is usable as one (for failed results)."""
    if isinstance(payload, dict):
        job_id = payload.get("job_id")
        if isinstance(job_id, str) and re.fullmatch(JOB_ID_PATTERN, job_id):
            return job_id
    return None
