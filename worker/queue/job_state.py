"""The per-job state the worker writes (contract 1.2, docs/contract.md section 5a): `running` when a run begins and
as it makes progress, `retrying` after a failure that runs again, and the final status in the terminal write.

Each write is the whole JSON object (`JobState`), with the result's TTL, in the same Redis step as the event that
goes with it: the begin script, the progress event's pipeline, the retry report and the terminal write. The attempt
of a run that begins is known only inside the begin script, which appends it (`running_without_attempt`).
Pre-generation (warm) jobs write none.
"""

from __future__ import annotations

from dataclasses import dataclass

from npc_video_client.clock import now_ms
from npc_video_client.contract import JobResult, JobState, JobStateStatus, JobStatus
from npc_video_client.errors import JobError
from npc_video_client.names import StreamNames

FINAL_STATUS = {
    JobStatus.COMPLETED: JobStateStatus.COMPLETED,
    JobStatus.FAILED: JobStateStatus.FAILED,
    JobStatus.CANCELLED: JobStateStatus.CANCELLED,
    JobStatus.EXPIRED: JobStateStatus.EXPIRED,
}


@dataclass(frozen=True)
class Progress:
    """Where a run got to: the last denoising step reported and the run's steps."""

    step: int | None = None
    steps: int | None = None

    @property
    def fraction(self) -> float:
        return round(self.step / self.steps, 4) if self.step and self.steps else 0.0


@dataclass(frozen=True)
class StateWrite:
    """One write of a job's state: its key, the JSON and how long it lives."""

    key: str
    body: str
    ttl_s: int


class JobStates:
    def __init__(self, names: StreamNames, worker: str, ttl_s: int) -> None:
        self.names = names
        self.worker = worker
        self.ttl_s = ttl_s

    def _write(self, state: JobState, *, exclude_attempt: bool = False) -> StateWrite:
        body = state.model_dump_json(exclude={"attempt"} if exclude_attempt else None)
        return StateWrite(self.names.state(state.job_id), body, self.ttl_s)

    def running_without_attempt(self, job_id: str, steps: int) -> StateWrite:
        """A run begins: the begin script appends its attempt."""
        state = JobState(
            job_id=job_id,
            status=JobStateStatus.RUNNING,
            step=None,
            steps=steps,
            updated_at=now_ms(),
            worker=self.worker,
        )
        return self._write(state, exclude_attempt=True)

    def running(self, job_id: str, attempt: int, progress: Progress) -> StateWrite:
        state = JobState(
            job_id=job_id,
            status=JobStateStatus.RUNNING,
            progress=progress.fraction,
            step=progress.step,
            steps=progress.steps,
            attempt=attempt,
            updated_at=now_ms(),
            worker=self.worker,
        )
        return self._write(state)

    def retrying(self, job_id: str, attempt: int, progress: Progress, error: JobError) -> StateWrite:
        state = JobState(
            job_id=job_id,
            status=JobStateStatus.RETRYING,
            progress=progress.fraction,
            step=progress.step,
            steps=progress.steps,
            attempt=attempt,
            updated_at=now_ms(),
            worker=self.worker,
            error_code=error.code,
            error_message=error.message,
        )
        return self._write(state)

    def final(self, result: JobResult, attempt: int, progress: Progress) -> StateWrite:
        completed = result.status == JobStatus.COMPLETED
        state = JobState(
            job_id=result.job_id,
            status=FINAL_STATUS[result.status],
            progress=1.0 if completed else progress.fraction,
            step=result.steps if completed else progress.step,
            steps=result.steps if result.steps is not None else progress.steps,
            attempt=attempt,
            updated_at=now_ms(),
            worker=self.worker,
            error_code=result.error_code,
            error_message=result.error_message,
        )
        return self._write(state)
