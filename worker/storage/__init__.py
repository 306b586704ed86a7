"""Where finished videos go: a small interface and its backends, chosen by NPC_WORKER_STORAGE_URL."""

from __future__ import annotations

from pathlib import Path

from worker.storage.base import Storage, StorageConfigError
from worker.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StorageConfigError", "open_storage"]


def open_storage(url: str) -> Storage:
    """`file://DIR` (relative DIR: against the working directory)."""
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")).expanduser().resolve())
    raise StorageConfigError(f"storage URL {url!r} is not supported; use file://DIR")
