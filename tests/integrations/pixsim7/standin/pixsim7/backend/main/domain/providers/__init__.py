"""pixsim7/backend/main/domain/providers/__init__.py: ProviderAccount and ProviderSubmission, pixsim7's SQLModel
tables; here dataclasses with the columns ProviderService and the plugin use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class ProviderAccount:
    """An accountless provider (`requires_credentials=False`) runs on pixsim7's shared system account."""

    id: int
    provider_id: str
    email: str
    user_id: int | None = None
    provider_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProviderSubmission:
    generation_id: int | None
    account_id: int
    provider_id: str
    payload: dict[str, Any]
    retry_attempt: int
    submitted_at: datetime
    status: str = "pending"
    response: dict[str, Any] = field(default_factory=dict)
    provider_job_id: str | None = None


__all__ = ["ProviderAccount", "ProviderSubmission"]
