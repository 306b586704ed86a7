"""A small thread-safe LRU of downloaded bytes, bounded in entries, total bytes and age.

Consecutive jobs of one NPC usually share its base image: keeping it for a short while saves a download
per job, and the age limit means an image replaced at the same URL is picked up within a minute.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable


class BytesCache:
    def __init__(self, max_entries: int, max_bytes: int, max_age_s: float) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._entries: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, data = entry
            if time.monotonic() - stored_at > self.max_age_s:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return data

    def put(self, key: Hashable, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (time.monotonic(), data)
            self._total += len(data)
            while len(self._entries) > self.max_entries or self._total > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: Hashable) -> None:
        _, data = self._entries.pop(key)
        self._total -= len(data)
