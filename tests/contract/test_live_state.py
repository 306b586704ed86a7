"""The per-job state (contract 1.2) through a real worker: queued at submit, running with rising progress and the
attempt while the worker runs the job, completed with progress 1.0 at the end (the worker writes all but the first)."""

from __future__ import annotations

import time

from npc_video_client import JobStateStatus, NpcVideoClient
from npc_video_client.contract import JobState
from tests.support.jobs import envelope


def test_a_polling_producer_sees_progress_rise_to_completion(live):
    client = NpcVideoClient(live.url)
    client.submit({**envelope("live-state", steps=40, width=32, height=32), "metadata": {"generation_id": 7101}})
    seen: list[JobState] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.status("live-state")
        if not seen or state != seen[-1]:
            seen.append(state)
        if state.final:
            break
        time.sleep(0.02)
    running = [state for state in seen if state.status == JobStateStatus.RUNNING]
    assert seen[0].status == JobStateStatus.QUEUED and seen[0].attempt == 0
    assert len(running) >= 2 and all(state.attempt == 1 and state.worker for state in running)
    progress = [state.progress for state in running]
    assert progress == sorted(progress) and progress[-1] > progress[0]
    assert all(state.steps == 40 for state in running if state.steps is not None)
    final = seen[-1]
    assert (final.status, final.progress, final.attempt) == (JobStateStatus.COMPLETED, 1.0, 1)
