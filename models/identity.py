"""What a stored video depends on besides the request: the model's files and settings, each LoRA's bytes.

The content-addressed storage key (pipelines.request.ResolvedRequest.fingerprint) must change whenever the video
would: a LoRA file replaced in place, a model directory with new weights, another dtype, a lossy speed setting.
LoRAs are hashed by content (they are small; a digest is kept per file version, so each version is read once);
model directories, tens of gigabytes, are identified by their files' names, sizes and modification times.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from models.catalog import ModelEntry

_CHUNK = 1 << 20
_digests: dict[tuple[str, int, int, int], str] = {}
_digests_lock = threading.Lock()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, computed once per version of the file (path, size, mtime, inode)."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _digests_lock:
        known = _digests.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _digests_lock:
        _digests[key] = value
    return value


def _directory_listing(root: Path) -> list[tuple[str, int, int]]:
    listing = []
    for folder, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            path = Path(folder) / name
            stat = path.stat()
            listing.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return sorted(listing)


def model_identity(entry: ModelEntry) -> str:
    """sha256 over the model's files (or synthetic name), dtype and speed settings (some are lossy)."""
    source: object = entry.path
    path = Path(entry.path)
    if entry.synthetic is None and path.is_dir():
        source = _directory_listing(path)
    canonical = json.dumps(
        {"source": source, "dtype": entry.dtype, "speed": entry.speed.model_dump(mode="json")},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
