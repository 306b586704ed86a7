"""Worker settings: environment variables prefixed NPC_WORKER_, overridden by CLI flags, read once and frozen."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
# Letters, digits, _ . - and at most one Redis Cluster hash tag `{...}` (non-empty): `npc`, `{npc}`, `game{npc}`.
PREFIX_PATTERN = r"^[A-Za-z0-9_.-]*(\{[A-Za-z0-9_.-]+\})?[A-Za-z0-9_.-]*$"
HASH_TAG = re.compile(r"\{[^{}]+\}")
SENTINEL_ADDRESS = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\s\[\]]+):(?P<port>\d{1,5})$")
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
    condition_cache_bytes: int | None = Field(
        default=None,
        ge=0,
        description="device memory for cached prompt embeddings and encoded start frames (e.g. 2GiB; 0 disables); "
        "unset: 2 GiB on CUDA, 256 MiB on the CPU",
    )
    max_batch: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="most compatible jobs run through the denoiser together; unset: 4 on CUDA, 1 on the CPU",
    )
    batch_wait_ms: int = Field(
        default=0,
        ge=0,
        description="how long a job waits for compatible ones to batch with; 0: batch only what already waits",
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
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="redis:// or rediss://, may hold a user and password; with sentinels: credentials, db and TLS "
        "of the master (its host:port is not used)",
    )
    redis_cluster: bool = Field(
        default=False, description="Redis Cluster: a cluster-aware client; the prefix must carry a hash tag, e.g. {npc}"
    )
    redis_sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated host:port of Redis Sentinels; they name the master"
    )
    redis_sentinel_master: str | None = Field(default=None, description="the master name the sentinels monitor")
    redis_sentinel_password: str | None = Field(
        default=None, description="password of the sentinels themselves (their requirepass), when they have one"
    )
    prefix: str = Field(
        default="npc", min_length=1, pattern=PREFIX_PATTERN, description="key prefix of streams and keys"
    )
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
    model_load_timeout_s: float = Field(
        default=1800.0,
        gt=0,
        description="/healthz stays alive this long while a model is read from disk (the loop cannot beat then)",
    )
    events_maxlen: int = Field(default=100_000, ge=1, description="approximate MAXLEN of the events stream")
    events_channel: str | None = Field(default=None, description="also PUBLISH every event on this channel")
    progress_interval_ms: int = Field(default=250, ge=0, description="least time between progress events of a job")
    affinity_lookahead: int = Field(
        default=4, ge=1, description="pending entries of a lane considered to prefer the model on the device"
    )
    affinity_max_skips: int = Field(default=3, ge=0, description="times an entry may be passed over by affinity")
    # -- worker groups (worker.group; set per process by `serve --devices ... --group N`) --
    group_size: int = Field(
        default=1, ge=1, le=64, description="processes (devices) of this worker's group; 1: a worker on its own"
    )
    group_rank: int = Field(default=0, ge=0, description="this process's rank in its group; 0 leads")
    group_address: str = Field(
        default="127.0.0.1:29500", pattern=r"^[^:\s]+:\d{1,5}$", description="host:port where a group's members meet"
    )
    group_start_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="how long a group's members wait for each other at start (model loads included)",
    )
    group_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="longest wait on another member of the group (a collective): a dead or hung member ends the "
        "group within this time",
    )
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

    @field_validator("device_memory_budget", "condition_cache_bytes", mode="before")
    @classmethod
    def _parse_budget(cls, value: Any) -> Any:
        return parse_byte_size(value) if isinstance(value, str) else value

    @field_validator("input_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part for part in value.split(os.pathsep) if part]
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: Any) -> Any:
        return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            match = SENTINEL_ADDRESS.match(address)
            if match is None or not 0 < int(match.group("port")) < 65536:
                raise ValueError(f"sentinel address {address!r} must be host:port, e.g. 10.0.0.5:26379")
        return addresses

    @model_validator(mode="after")
    def _check_group(self) -> Settings:
        if self.group_rank >= self.group_size:
            raise ValueError(
                f"NPC_WORKER_GROUP_RANK {self.group_rank} is not below NPC_WORKER_GROUP_SIZE {self.group_size}; "
                "ranks run from 0 (the leader) to size - 1 (`serve --devices ... --group N` sets both)"
            )
        return self

    @model_validator(mode="after")
    def _check_redis_topology(self) -> Settings:
        if self.redis_cluster and self.redis_sentinels:
            raise ValueError(
                "NPC_WORKER_REDIS_CLUSTER and NPC_WORKER_REDIS_SENTINELS are both set; a Redis deployment is either "
                "a cluster or a sentinel-managed primary: set one"
            )
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError(
                "NPC_WORKER_REDIS_SENTINELS is set but NPC_WORKER_REDIS_SENTINEL_MASTER is not; name the master the "
                "sentinels monitor (the name in their `sentinel monitor NAME host port quorum` line)"
            )
        if self.redis_sentinel_master and not self.redis_sentinels:
            raise ValueError(
                f"NPC_WORKER_REDIS_SENTINEL_MASTER is {self.redis_sentinel_master!r} but NPC_WORKER_REDIS_SENTINELS "
                "is empty; list the sentinels as host:port,host:port"
            )
        if self.redis_cluster and not HASH_TAG.search(self.prefix):
            raise ValueError(
                f"NPC_WORKER_REDIS_CLUSTER is on but NPC_WORKER_PREFIX {self.prefix!r} has no hash tag: the worker's "
                "scripts and multi-stream reads touch several keys at once, which Redis Cluster allows only within one "
                f"hash slot; set NPC_WORKER_PREFIX={{{self.prefix}}} (keys become {{{self.prefix}}}:jobs:high, ...) "
                "and the same prefix on every producer"
            )
        return self

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

    def condition_cache_size(self, device: str) -> int:
        """The conditioning cache's byte budget on this device."""
        if self.condition_cache_bytes is not None:
            return self.condition_cache_bytes
        return 2 * 1024**3 if device.startswith("cuda") else 256 * 1024**2

    def batch_limit(self, device: str) -> int:
        """How many compatible jobs may share one denoiser call on this device (one at a time in a worker group:
        its members run each call in lockstep)."""
        if self.group_size > 1:
            return 1
        if self.max_batch is not None:
            return self.max_batch
        return 4 if device.startswith("cuda") else 1

    def resolved_device(self) -> str:
        """`auto` picks the first CUDA device when there is one (imports torch, so call it in the worker only)."""
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
