"""pixsim7/backend/main/domain/__init__.py: OperationType, ProviderStatus, Generation and ProviderAccount as pixsim7
exports them. Generation is pixsim7's SQLModel table; here a dataclass with the columns ProviderService and the
plugin read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pixsim7.backend.main.domain.enums import GenerationStatus, OperationType, ProviderStatus
from pixsim7.backend.main.domain.providers import ProviderAccount


@dataclass
class Generation:
    id: int | None
    user_id: int
    operation_type: OperationType
    provider_id: str
    canonical_params: dict[str, Any] = field(default_factory=dict)
    priority: int = 5
    retry_count: int = 0
    status: GenerationStatus = GenerationStatus.PENDING
    resolved_params: dict[str, Any] | None = None  # set by ProviderService after file preparation; reused by retries


__all__ = ["Generation", "GenerationStatus", "OperationType", "ProviderAccount", "ProviderStatus"]
