"""pixsim7/backend/main/domain/providers/schemas/manifest.py: ProviderKind and ProviderManifest, fields as in
pixsim7 (its long field descriptions are shortened)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field


class ProviderKind(str, Enum):
    VIDEO = "video"
    LLM = "llm"
    EMBEDDING = "embedding"
    BOTH = "both"


class ProviderManifest(BaseModel):
    model_config = ConfigDict(frozen=False, extra="allow")

    id: str
    name: str
    version: str
    description: str
    author: str
    kind: ProviderKind
    enabled: bool = True
    requires_credentials: bool = True
    domains: list[str] = Field(default_factory=list)
    credit_types: list[str] = Field(default_factory=lambda: ["web"])
    cost_estimator: dict[str, object] | None = None
    status_mapping_notes: str | None = None
