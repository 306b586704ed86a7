"""The npc-video-worker's wire contract and producer clients (redis and pydantic only, never torch)."""

from npc_video_client.aio import AsyncEventStream, AsyncNpcVideoClient
from npc_video_client.client import EventStream, NpcVideoClient
from npc_video_client.client_errors import (
    JobAlreadyEnded,
    NpcVideoClientError,
    RedisUnavailable,
    UnknownJob,
)
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobEnvelope,
    JobEvent,
    JobResult,
    JobState,
    JobStateStatus,
    JobStatus,
    NpcResponseParams,
    QualityPreset,
)
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import CancelOutcome, JobRejected
from npc_video_client.warming import WarmStatus

__all__ = [
    "CONTRACT_VERSION",
    "AsyncEventStream",
    "AsyncNpcVideoClient",
    "CancelOutcome",
    "ErrorCode",
    "EventStream",
    "JobAlreadyEnded",
    "JobEnvelope",
    "JobEvent",
    "JobRejected",
    "JobResult",
    "JobState",
    "JobStateStatus",
    "JobStatus",
    "Lane",
    "NpcResponseParams",
    "NpcVideoClient",
    "NpcVideoClientError",
    "QualityPreset",
    "RedisUnavailable",
    "StreamNames",
    "UnknownJob",
    "WarmStatus",
]
