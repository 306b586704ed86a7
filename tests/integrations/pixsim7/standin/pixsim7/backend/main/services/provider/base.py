"""pixsim7/backend/main/services/provider/base.py: GenerationResult, ProviderStatusResult and the Provider ABC with
pixsim7's signatures (its optional hooks for credits, uploads, moderation and UI specs, which the plugin does not
override, are left out), and the error names it re-exports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pixsim7.backend.main.domain import Generation, OperationType, ProviderStatus
from pixsim7.backend.main.domain.providers import ProviderAccount
from pixsim7.backend.main.shared.errors import (
    ProviderError,
    UnsupportedOperationError,
)
from pixsim7.backend.main.shared.errors import (
    ProviderJobNotFoundError as JobNotFoundError,
)


@dataclass
class GenerationResult:
    provider_job_id: str
    provider_video_id: str | None = None
    status: ProviderStatus = ProviderStatus.PENDING
    video_url: str | None = None
    thumbnail_url: str | None = None
    estimated_completion: datetime | None = None
    error_message: str | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = {}


@dataclass
class ProviderStatusResult:
    status: ProviderStatus
    video_url: str | None = None
    thumbnail_url: str | None = None
    progress: float | None = None
    error_message: str | None = None
    metadata: dict[str, Any] | None = None
    width: int | None = None
    height: int | None = None
    duration_sec: float | None = None
    provider_video_id: str | None = None
    suppress_thumbnail: bool = False
    has_retrievable_media_url: bool = False
    post_delivery_recheck_delay_sec: int | None = None

    def __post_init__(self) -> None:
        if self.metadata is None:
            self.metadata = {}


class Provider(ABC):
    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = config or {}
        self._manifest: Any = None

    @property
    @abstractmethod
    def provider_id(self) -> str: ...

    @property
    @abstractmethod
    def supported_operations(self) -> list[OperationType]: ...

    @abstractmethod
    def map_parameters(self, operation_type: OperationType, params: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    async def execute(
        self, operation_type: OperationType, account: ProviderAccount, params: dict[str, Any]
    ) -> GenerationResult: ...

    @abstractmethod
    async def check_status(
        self, account: ProviderAccount, provider_job_id: str, operation_type: OperationType | None = None
    ) -> ProviderStatusResult: ...

    def get_manifest(self) -> Any:
        return getattr(self, "_manifest", None)

    def requires_file_preparation(self) -> bool:
        return False

    def prepare_execution_params(self, operation_type: Any, params: dict[str, Any]) -> dict[str, Any]:
        """pixsim7's stub signature; providers needing preparation override it with the async signature
        ProviderService calls (generation=, mapped_params=, resolve_source_fn=, account=), as Sora and Remaker do."""
        return params

    async def cancel(self, account: ProviderAccount, provider_job_id: str) -> bool:
        return False

    def validate_operation(self, operation_type: OperationType) -> None:
        if operation_type not in self.supported_operations:
            raise ValueError(f"Operation {operation_type.value} not supported by {self.provider_id}.")


__all__ = [
    "Generation",
    "GenerationResult",
    "JobNotFoundError",
    "Provider",
    "ProviderError",
    "ProviderStatusResult",
    "UnsupportedOperationError",
]
