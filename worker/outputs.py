"""A job's output: its frames encoded (browser-playable MP4 and a JPEG poster), stored under its content keys, and
the completed result that points at them. CPU and network work only: the finisher does it behind the device."""

from __future__ import annotations

import tempfile
from pathlib import Path

from npc_video_client.clock import Stopwatch
from npc_video_client.contract import JobResult, JobStatus
from worker.encode import MP4_CONTENT_TYPE, THUMBNAIL_CONTENT_TYPE, encode_video, write_thumbnail
from worker.job import Frames, PreparedJob, request_summary
from worker.keys import thumbnail_key_of
from worker.storage import Storage


class Outputs:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def store(self, prepared: PreparedJob, frames: Frames | None) -> JobResult:
        """Encode and store (skipped on a cache hit: `frames` is None), then build the completed result."""
        if frames is not None:
            with tempfile.TemporaryDirectory(prefix="npc-encode-") as scratch:
                video_path, poster_path = Path(scratch) / "video.mp4", Path(scratch) / "poster.jpg"
                phase = Stopwatch()
                encode_video(frames, prepared.request.timing, video_path)
                write_thumbnail(frames[0], poster_path)
                prepared.timings.encode_ms = phase.ms()
                phase = Stopwatch()
                self.storage.put(prepared.thumbnail_key, poster_path, THUMBNAIL_CONTENT_TYPE)
                self.storage.put(prepared.video_key, video_path, MP4_CONTENT_TYPE)
                prepared.timings.upload_ms = phase.ms()
        elif not prepared.timings.prepare_ms:
            prepared.timings.prepare_ms = prepared.clock.ms()
        prepared.timings.total_ms = prepared.clock.ms()
        return request_summary(prepared.job_id, prepared.request, prepared.envelope.metadata).model_copy(
            update={
                "status": JobStatus.COMPLETED,
                "url": self.storage.url(prepared.video_key),
                "thumbnail_url": self.storage.url(prepared.thumbnail_key),
                "storage_key": prepared.video_key,
                "content_type": MP4_CONTENT_TYPE,
                "timings": prepared.timings,
                "gpu_seconds": round(prepared.timings.generate_ms / 1000, 3),
                "cache_hit": frames is None,
                "batch_size": None if frames is None else prepared.batch_size,
            }
        )

    def refresh_urls(self, result: JobResult) -> JobResult:
        """A stored completed result with URLs made now (presigned URLs expire; the stored ones may have)."""
        if result.status != JobStatus.COMPLETED or result.storage_key is None:
            return result
        thumbnail = thumbnail_key_of(result.storage_key)
        return result.model_copy(
            update={"url": self.storage.url(result.storage_key), "thumbnail_url": self.storage.url(thumbnail)}
        )
