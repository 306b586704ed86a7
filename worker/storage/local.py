"""A local directory: atomic writes (temp file in the same folder, then rename), file:// URLs.

A write goes to `.partial-*` beside its target first; a worker killed mid-write leaves that file behind, so
`check` (at start and from /readyz) deletes partial files older than PARTIAL_MAX_AGE_S, which no live write
takes that long to finish.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from worker.storage.base import StorageConfigError

log = logging.getLogger(__name__)
PARTIAL_PREFIX = ".partial-"
PARTIAL_MAX_AGE_S = 15 * 60


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key {key!r} escapes the storage root")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def put(self, key: str, source: Path, content_type: str) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
            try:
                with os.fdopen(handle, "wb") as temp, source.open("rb") as data:
                    shutil.copyfileobj(data, temp)
                    temp.flush()
                    os.fsync(temp.fileno())
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise JobError(ErrorCode.STORAGE_ERROR, f"writing {key} under {self.root} failed: {exc}") from exc

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(dir=self.root, prefix=PARTIAL_PREFIX + "probe-")
            os.close(handle)
            Path(probe).unlink()
        except OSError as exc:
            raise StorageConfigError(
                f"local storage {self.root} is not writable: {exc.strerror or exc} (NPC_WORKER_STORAGE_URL)"
            ) from exc
        self._sweep_partials()

    def _sweep_partials(self) -> None:
        cutoff = time.time() - PARTIAL_MAX_AGE_S
        for partial in self.root.rglob(PARTIAL_PREFIX + "*"):
            try:
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
                    log.info("removed %s, left by a write that never finished", partial)
            except OSError as exc:  # another worker removed it first, or it is not ours to remove
                log.debug("could not remove %s: %s", partial, exc)
