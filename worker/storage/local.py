"""A local directory: atomic writes (temp file in the same folder, then rename), file:// URLs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError


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
            handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
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
