"""Worker settings: environment variables prefixed NPC_WORKER_, overridden by CLI flags, read once and frozen."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
BYTE_SIZE_PATTERN = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]i?B|B)?\s*$", re.IGNORECASE)
BYTE_UNITS = {
    "b": 1,
    **{f"{prefix}b": 1000**power for power, prefix in enumerate("kmgt", start=1)},
    **{f"{prefix}ib": 1024**power for power, prefix in enumerate("kmgt", start=1)},
}


def parse_byte_size(text: str) -> int:
    """`"40GiB"` -> 42949672960, `"500MB"` -> 500000000, `"1024"` -> 1024 (KB/MB/GB/TB are powers of 1000)."""
    match = BYTE_SIZE_PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a byte size; write a number of bytes or a number with a unit, e.g. 40GiB, 500MB, 1.5TB"
        )
    return int(float(match.group("number")) * BYTE_UNITS[(match.group("unit") or "B").lower()])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPC_WORKER_", frozen=True, extra="forbid")

    catalog: Path | None = Field(
        default=None, description="catalog TOML; unset: the embedded demo catalog with a tiny model built on first use"
    )
    data_dir: Path = Field(default=Path(".npc-worker"), description="where the embedded catalog and tiny model live")
    storage_url: str = Field(default="file://./outputs", description="file://DIR (default) or s3://bucket/prefix")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    input_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, description="os.pathsep-separated directories local base images may come from"
    )
    max_image_pixels: int = Field(default=40_000_000, ge=1, description="decompression-bomb guard for base images")
    max_image_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="largest accepted base image file")
    lora_cache_size: int = Field(default=8, ge=1, description="LoRA adapters kept loaded per model (LRU)")
    device_memory_budget: int | None = Field(
        default=None,
        ge=1,
        description="bytes of model weights kept on the device (e.g. 40GiB); beyond it the least recently used "
        "models wait in CPU memory; unset: unlimited",
    )

    # -- object storage and remote inputs --
    s3_endpoint_url: str | None = Field(
        default=None, pattern=r"^https?://", description="S3 API endpoint for MinIO, SeaweedFS, R2...; unset: AWS"
    )
    public_base_url: str | None = Field(
        default=None, pattern=r"^https?://", description="result URLs become {public_base_url}/{key}; unset: presigned"
    )
    presign_ttl_s: int = Field(default=3600, ge=1, le=7 * 24 * 3600, description="lifetime of presigned GET URLs")
    allow_private_networks: bool = Field(
        default=False, description="let http(s) base images come from private, loopback and CGNAT addresses"
    )
    fetch_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated hosts http(s) base images may come from (*.domain too)"
    )
    fetch_timeout_s: float = Field(default=10.0, gt=0, description="whole-download limit of an http(s) base image")

    # -- Redis streams (the queue) --
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="redis:// or rediss://, may hold a password")
    prefix: str = Field(default="npc", pattern=r"^[A-Za-z0-9_.-]+$", description="key prefix of streams and keys")
    consumer: str | None = Field(default=None, description="consumer name; default stable per host and device")
    claim_idle_ms: int = Field(default=60_000, ge=1_000, description="take over entries idle this long")
    max_attempts: int = Field(default=3, ge=1, description="runs of a job started before it goes to the dead stream")
    retry_backoff_ms: int = Field(default=2_000, ge=0, description="first retry delay; doubles per attempt")
    block_ms: int = Field(default=2_000, ge=10, description="longest blocking XREADGROUP wait")
    result_ttl_s: int = Field(default=7 * 24 * 3600, ge=1, description="lifetime of npc:result:{job_id}")
    completion_ttl_s: int = Field(
        default=24 * 3600, ge=1, description="lifetime of npc:done:{job_id}, the list a client can block on"
    )
    dead_maxlen: int = Field(default=10_000, ge=1, description="approximate MAXLEN of npc:jobs:dead")
    max_job_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="largest job payload read; larger entries fail invalid_params"
    )
    heartbeat_timeout_s: float = Field(
        default=300.0, gt=0, description="/healthz fails once the loop has not beaten for this long (hung loop)"
    )
    events_maxlen: int = Field(default=100_000, ge=1, description="approximate MAXLEN of the events stream")
    events_channel: str | None = Field(default=None, description="also PUBLISH every event on this channel")
    progress_interval_ms: int = Field(default=250, ge=0, description="least time between progress events of a job")
    affinity_lookahead: int = Field(
        default=4, ge=1, description="pending entries of a lane considered to prefer the model on the device"
    )
    affinity_max_skips: int = Field(default=3, ge=0, description="times an entry may be passed over by affinity")
    http_host: str = Field(default="0.0.0.0", description="address of /healthz, /readyz, /metrics")
    http_port: int = Field(default=8080, ge=0, le=65535, description="0 disables the HTTP server")
    log_format: Literal["text", "json"] = Field(
        default="text", description="text lines, or one JSON object per line with job_id, lane, attempt, model"
    )

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError(f"device {value!r} must be auto, cpu, cuda or cuda:N")
        return value

    @field_validator("device_memory_budget", mode="before")
    @classmethod
    def _parse_budget(cls, value: Any) -> Any:
        return parse_byte_size(value) if isinstance(value, str) else value

    @field_validator("input_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

    @field_validator("fetch_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return value.split(",") if isinstance(value, str) else value

    @field_validator("fetch_allowed_hosts")
    @classmethod
    def _normalize_hosts(cls, hosts: list[str]) -> list[str]:
        return [host.strip().lower() for host in hosts if host.strip()]

    @field_validator("input_roots")
    @classmethod
    def _resolve_roots(cls, roots: list[Path]) -> list[Path]:
        return [root.expanduser().resolve() for root in roots]

    def resolved_device(self) -> str:
        """`auto` picks the first CUDA device when there is one (imports torch, so call it in the worker only)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
