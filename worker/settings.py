"""Worker settings: environment variables prefixed NPC_WORKER_, overridden by CLI flags, read once and frozen."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


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

    # -- Redis streams (the queue) --
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="redis:// or rediss://, may hold a password")
    prefix: str = Field(default="npc", pattern=r"^[A-Za-z0-9_.-]+$", description="key prefix of streams and keys")
    consumer: str | None = Field(default=None, description="consumer name; default stable per host and device")
    claim_idle_ms: int = Field(default=60_000, ge=1_000, description="take over entries idle this long")
    max_attempts: int = Field(default=3, ge=1, description="deliveries before a job goes to the dead stream")
    retry_backoff_ms: int = Field(default=2_000, ge=0, description="first retry delay; doubles per attempt")
    block_ms: int = Field(default=2_000, ge=10, description="longest blocking XREADGROUP wait")
    result_ttl_s: int = Field(default=7 * 24 * 3600, ge=1, description="lifetime of npc:result:{job_id}")
    events_maxlen: int = Field(default=100_000, ge=1, description="approximate MAXLEN of the events stream")
    events_channel: str | None = Field(default=None, description="also PUBLISH every event on this channel")
    progress_interval_ms: int = Field(default=250, ge=0, description="least time between progress events of a job")
    http_host: str = Field(default="0.0.0.0", description="address of /healthz, /readyz, /metrics")
    http_port: int = Field(default=8080, ge=0, le=65535, description="0 disables the HTTP server")

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if not DEVICE_PATTERN.match(value):
            raise ValueError(f"device {value!r} must be auto, cpu, cuda or cuda:N")
        return value

    @field_validator("input_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

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
