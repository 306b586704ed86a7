"""The storage interface every backend implements; failures surface as storage_error (retryable)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageConfigError(ValueError):
    """The storage URL or its settings are unusable: refused at start."""


class Storage(Protocol):
    def exists(self, key: str) -> bool:
        """Whether a complete object is stored under `key` (a cache hit)."""
        ...

    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store `source` under `key` so that readers never see a partial object."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under `key` (nothing when there is none): warm-cache eviction (worker.warm_cache)."""
        ...

    def url(self, key: str) -> str:
        """What a client fetches to play the object."""
        ...

    def check(self) -> None:
        """Write and delete a probe object; StorageConfigError naming the problem when that fails (at start and
        from /readyz, so an unwritable location is found before the first job)."""
        ...
