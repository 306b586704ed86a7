"""The npc-video-worker's wire contract and producer clients (redis and pydantic only, never torch)."""

from npc_video_client.aio import AsyncEventStream, AsyncNpcVideoClient
from npc_video_client.client import EventStream, NpcVideoClient
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobEnvelope,
    JobEvent,
    JobResult,
    JobStatus,
    NpcResponseParams,
    QualityPreset,
)
from npc_video_client.names import Lane, StreamNames
from npc_video_client.protocol import JobRejected, NotFinal

__all__ = [
    "CONTRACT_VERSION",
    "AsyncEventStream",
    "AsyncNpcVideoClient",
    "ErrorCode",
    "EventStream",
    "JobEnvelope",
    "JobEvent",
    "JobRejected",
    "JobResult",
    "JobStatus",
    "Lane",
    "NotFinal",
    "NpcResponseParams",
    "NpcVideoClient",
    "QualityPreset",
    "StreamNames",
]
