"""Preparing a job for the device: its base image fetched and decoded, its request resolved against the catalog, its
content key computed and the result cache checked. CPU and network work only, done by the intake while the device
runs the job before (and by in-process runs)."""

from __future__ import annotations

from models.catalog import Catalog
from models.parallel import check_divisible
from models.pool import ModelPool
from models.resolution import resolve
from npc_video_client.clock import Stopwatch, now_ms
from npc_video_client.contract import ErrorCode, JobEnvelope, Timings
from npc_video_client.errors import DeadlineExceeded, JobCancelled, JobError
from pipelines.families import FAMILIES
from worker.images import fit_image, load_base_image
from worker.job import JobHooks, PreparedJob
from worker.keys import thumbnail_key, video_key
from worker.settings import Settings
from worker.storage import Storage


def check_deadline(envelope: JobEnvelope) -> None:
    """A job past its deadline ends as expired: checked at pickup and after every denoising step."""
    if envelope.deadline is not None and now_ms() > envelope.deadline:
        raise DeadlineExceeded(envelope.deadline)


class Preparer:
    def __init__(self, settings: Settings, catalog: Catalog, pool: ModelPool, storage: Storage) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.storage = storage

    def prepare(self, envelope: JobEnvelope, hooks: JobHooks) -> PreparedJob:
        """Raises the JobError that ends the job (or another exception: see worker.failures)."""
        clock = Stopwatch()
        # int arithmetic first: a submitted_at far in the future is a producer's clock error, not an overflow
        queue_ms = float(max(0, now_ms() - envelope.submitted_at)) if envelope.submitted_at else None
        check_deadline(envelope)
        if hooks.cancel_requested():
            raise JobCancelled(envelope.job_id)
        params = envelope.params
        source, trusted = self._image_source(params.npc_id, params.npc_base_image)
        base = load_base_image(source, self.settings, trusted=trusted)
        request = resolve(params, self.catalog, base.size)
        if self.settings.group_size > 1:  # a worker group splits the video's tokens over its members
            family = FAMILIES[request.family]
            check_divisible(family, request.width, request.height, request.generated_frames, self.settings.group_size)
        fingerprint = request.fingerprint(self.pool.identity(request.model), base.sha256)
        return PreparedJob(
            envelope=envelope,
            request=request,
            fingerprint=fingerprint,
            video_key=video_key(params.npc_id, fingerprint),
            thumbnail_key=thumbnail_key(params.npc_id, fingerprint),
            clock=clock,
            timings=Timings(queue_ms=queue_ms),
            image=fit_image(base.image, request.width, request.height),
            image_sha256=base.sha256,
        )

    def is_cached(self, prepared: PreparedJob) -> bool:
        """The identical request's video and poster are stored already (content-addressed keys)."""
        return self.storage.exists(prepared.video_key) and self.storage.exists(prepared.thumbnail_key)

    def _image_source(self, npc_id: str, from_job: str | None) -> tuple[str, bool]:
        """The job's image (untrusted) or the catalog's image for this NPC (the operator's, trusted)."""
        if from_job is not None:
            return from_job, False
        npc = self.catalog.npcs.get(npc_id)
        if npc is None:
            raise JobError(
                ErrorCode.INVALID_PARAMS,
                f"params.npc_base_image is missing and the catalog has no [npcs.{npc_id}] base_image",
            )
        return npc.base_image, True
