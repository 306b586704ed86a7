"""pixsim7/backend/main/domain/providers/schemas/__init__.py (the manifest's part)."""

from pixsim7.backend.main.domain.providers.schemas.manifest import ProviderKind, ProviderManifest

__all__ = ["ProviderKind", "ProviderManifest"]
