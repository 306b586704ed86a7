"""pixsim7/backend/main/domain/providers/registry/provider_registry.py: the video registry and plugin loading as
pixsim7 does them (folders of the providers directory with a manifest.py exporting `provider` and `manifest`; the
manifest attached to the instance; registered by kind). pixsim7's SimpleRegistry base, its auto-discovery on a miss
and the LLM and embedding registries are left out."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

from pixsim7.backend.main.shared.errors import ProviderNotFoundError

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS_DIR = "pixsim7/backend/main/providers"
DEFAULT_PROVIDERS_MODULE = "pixsim7.backend.main.providers"


class ProviderRegistry:
    def __init__(self) -> None:
        self._items: dict[str, Any] = {}

    def register(self, provider: Any) -> None:
        self._items[provider.provider_id] = provider

    def get(self, provider_id: str) -> Any:
        try:
            return self._items[provider_id]
        except KeyError:
            raise ProviderNotFoundError(provider_id) from None

    def list_provider_ids(self) -> list[str]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()


registry = ProviderRegistry()


def _resolve_providers_dir(providers_dir: str) -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / DEFAULT_PROVIDERS_DIR
        if candidate.exists():
            return (parent / providers_dir).resolve()
    return (Path.cwd() / providers_dir).resolve()


def discover_providers(providers_dir: str = DEFAULT_PROVIDERS_DIR) -> list[str]:
    resolved = _resolve_providers_dir(providers_dir)
    discovered = []
    for item in sorted(os.listdir(resolved)):
        path = resolved / item
        if path.is_dir() and not item.startswith(("_", ".")) and (path / "manifest.py").exists():
            discovered.append(item)
    return discovered


def load_provider_plugin(provider_name: str, providers_dir: str = DEFAULT_PROVIDERS_DIR) -> bool:
    from pixsim7.backend.main.domain.providers.schemas import ProviderKind

    try:
        module = importlib.import_module(f"{DEFAULT_PROVIDERS_MODULE}.{provider_name}.manifest")
        provider_instance = getattr(module, "provider", None)
        manifest = getattr(module, "manifest", None)
        if not provider_instance:
            logger.error(f"Provider plugin {provider_name} has no 'provider' instance")
            return False
        if manifest is not None:
            provider_instance._manifest = manifest
        if manifest is not None and not manifest.enabled:
            return False
        if manifest is not None and manifest.kind in (ProviderKind.VIDEO, ProviderKind.BOTH):
            registry.register(provider_instance)
        else:
            logger.warning(f"Unknown provider kind for {provider_name}")
            return False
        on_register = getattr(module, "on_register", None)
        if callable(on_register):
            on_register()
        return True
    except Exception as e:
        logger.error(f"Failed to load provider plugin {provider_name}: {e}", exc_info=True)
        return False


def register_providers_from_plugins(providers_dir: str = DEFAULT_PROVIDERS_DIR) -> int:
    return sum(load_provider_plugin(name, providers_dir) for name in discover_providers(providers_dir))
