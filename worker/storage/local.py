"""A local directory: atomic writes (temp file in the same folder, then rename), file:// or public http(s) URLs.

A write goes to `.partial-*` beside its target first; a worker killed mid-write leaves that file behind, so
`check` (at start and from /readyz) deletes partial files older than PARTIAL_MAX_AGE_S, which no live write
takes that long to finish.

Clips are meant to be played by others: a web server in front of the folder (running as another user) or a player
on the same machine. Stored files are world-readable (0644) and the folders the storage creates are world-listable
(0755), whatever the process's umask; with `NPC_WORKER_PUBLIC_BASE_URL` the URLs are `{public_base_url}/{key}`
(the key URL-quoted), where that web server serves the folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from worker.storage.base import StorageConfigError

log = logging.getLogger(__name__)
PARTIAL_PREFIX = ".partial-"
PARTIAL_MAX_AGE_S = 15 * 60
FILE_MODE = 0o644  # explicit: mkstemp creates 0600, and the umask would narrow what mkdir and open create
FOLDER_MODE = 0o755


class LocalStorage:
    def __init__(self, root: Path, public_base_url: str | None = None) -> None:
        self.root = root
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

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
            make_folders(target.parent)
            handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
            try:
                with os.fdopen(handle, "wb") as temp, source.open("rb") as data:
                    shutil.copyfileobj(data, temp)
                    os.fchmod(temp.fileno(), FILE_MODE)
                    temp.flush()
                    os.fsync(temp.fileno())
                os.replace(temp_name, target)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:  # the producer learns what failed; the server's paths stay in the log
            log.error("writing %s under %s failed: %s", key, self.root, exc)
            reason = exc.strerror or type(exc).__name__
            raise JobError(ErrorCode.STORAGE_ERROR, f"writing {key} to local storage failed: {reason}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            log.error("deleting %s under %s failed: %s", key, self.root, exc)
            reason = exc.strerror or type(exc).__name__
            raise JobError(ErrorCode.STORAGE_ERROR, f"deleting {key} from local storage failed: {reason}") from exc

    def url(self, key: str) -> str:
        """`{public_base_url}/{key}` (URL-quoted) when a web server serves the folder, else the file's file:// URL."""
        path = self._path(key)
        if self.public_base_url:
            return f"{self.public_base_url}/{quote(key)}"
        return path.as_uri()

    def check(self) -> None:
        try:
            make_folders(self.root)
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


def make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents as FOLDER_MODE. Folders that exist are left as they are: the
    operator's own, or created by another worker at the same moment (which sets their mode itself)."""
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for path in reversed(missing):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        os.chmod(path, FOLDER_MODE)
