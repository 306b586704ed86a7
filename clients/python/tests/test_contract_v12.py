"""Contract 1.2: the per-job state, its key, and how a state is derived from a result when it has expired."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from npc_video_client.client_errors import UnknownJob
from npc_video_client.contract import (
    CONTRACT_VERSION,
    ErrorCode,
    JobResult,
    JobState,
    JobStateStatus,
    JobStatus,
    Timings,
)
from npc_video_client.names import StreamNames
from npc_video_client.protocol import resolve_state, state_from_result


def test_the_version_is_1_2():
    assert CONTRACT_VERSION == "1.2"


def test_the_state_key_sits_under_the_prefix():
    assert StreamNames("npc").state("gen-1") == "npc:state:gen-1"
    assert StreamNames("{game}").state("a.b:c") == "{game}:state:a.b:c"


def test_the_status_values_are_the_contracts():
    assert [status.value for status in JobStateStatus] == [
        "queued", "running", "retrying", "completed", "failed", "cancelled", "expired",
    ]  # fmt: skip
    finals = {status for status in JobStateStatus if JobState(job_id="j", status=status, updated_at=1).final}
    assert finals == {JobStateStatus.COMPLETED, JobStateStatus.FAILED, JobStateStatus.CANCELLED, JobStateStatus.EXPIRED}


def test_a_state_as_a_worker_writes_it_parses_and_extra_fields_are_ignored():
    written = (
        '{"job_id": "j", "status": "running", "progress": 0.5, "step": 4, "steps": 8, "attempt": 1,'
        ' "updated_at": 1764079990123, "worker": "gpu-a:cuda", "error_code": null, "error_message": null,'
        ' "contract_version": "1.3", "eta_ms": 900}'
    )
    state = JobState.model_validate_json(written)
    assert (state.status, state.progress, state.step, state.steps, state.attempt) == ("running", 0.5, 4, 8, 1)
    assert state.worker == "gpu-a:cuda" and state.contract_version == "1.3" and not state.final


@pytest.mark.parametrize("progress", [-0.1, 1.5])
def test_progress_is_held_to_0_1(progress):
    with pytest.raises(ValidationError, match="progress"):
        JobState(job_id="j", status=JobStateStatus.RUNNING, progress=progress, updated_at=1)


def test_a_queued_state_has_attempt_0_progress_0_and_this_version():
    state = JobState(job_id="j", status=JobStateStatus.QUEUED, updated_at=5)
    assert (state.attempt, state.progress, state.step, state.steps, state.worker) == (0, 0.0, None, None, None)
    assert state.contract_version == CONTRACT_VERSION


def test_a_state_is_derived_from_a_result_when_it_expired():
    timings = Timings(generate_ended_at=1764079990123.7)
    done = state_from_result(JobResult(job_id="j", status=JobStatus.COMPLETED, steps=8, timings=timings))
    assert (done.status, done.progress, done.step, done.steps) == ("completed", 1.0, 8, 8)
    assert done.updated_at == 1764079990123  # the end of the device work, in whole milliseconds
    failed = JobResult(
        job_id="k", status=JobStatus.FAILED, error_code=ErrorCode.INVALID_IMAGE, error_message="not an image"
    )
    state = state_from_result(failed)
    assert (state.status, state.progress, state.error_code, state.error_message) == (
        "failed", 0.0, ErrorCode.INVALID_IMAGE, "not an image",
    )  # fmt: skip
    assert state_from_result(JobResult(job_id="x", status=JobStatus.EXPIRED)).status == JobStateStatus.EXPIRED


def test_resolving_a_status_from_the_two_keys():
    running = JobState(job_id="j", status=JobStateStatus.RUNNING, progress=0.25, updated_at=1).model_dump_json()
    final = JobState(job_id="j", status=JobStateStatus.CANCELLED, updated_at=2).model_dump_json()
    result = JobResult(job_id="j", status=JobStatus.COMPLETED).model_dump_json()
    assert resolve_state("j", running, None).progress == 0.25
    assert resolve_state("j", final, result).status == JobStateStatus.CANCELLED  # a final state is as stored
    assert resolve_state("j", running, result).status == JobStateStatus.COMPLETED  # a 1.1 worker ended it
    assert resolve_state("j", None, result).status == JobStateStatus.COMPLETED
    with pytest.raises(UnknownJob, match="job j is unknown: no state and no result"):
        resolve_state("j", None, None)
