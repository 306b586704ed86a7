"""pixsim7/backend/main/domain/providers/registry/__init__.py."""

from pixsim7.backend.main.domain.providers.registry.provider_registry import (
    load_provider_plugin,
    register_providers_from_plugins,
    registry,
)

__all__ = ["load_provider_plugin", "register_providers_from_plugins", "registry"]
