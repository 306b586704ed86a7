"""The npc-video-worker's wire contract and producer client (redis and pydantic only, never torch)."""

from npc_video_client.client import JobRejected, NpcVideoClient
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobEnvelope,
    JobResult,
    JobStatus,
    NpcResponseParams,
    QualityPreset,
)
from npc_video_client.names import Lane, StreamNames

__all__ = [
    "CONTRACT_VERSION",
    "ErrorCode",
    "JobEnvelope",
    "JobRejected",
    "JobResult",
    "JobStatus",
    "Lane",
    "NpcResponseParams",
    "NpcVideoClient",
    "QualityPreset",
    "StreamNames",
]
