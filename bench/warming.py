"""Warm reactions and live previews, measured through the queue as a producer sees them (`--warm N`).

After a row's runs, on the row's own serve child (its previews at every step, NPC_WORKER_PREVIEW_INTERVAL_MS=0):
1. cold: N reactions, never warmed, submitted one after another; submit to result (`cold_p50_ms`), and submit to
   the end of its device work (`cold_device_p50_ms`, from the result's `timings.generate_ended_at`);
2. a warm backlog of `WARM_BACKLOG` other reactions goes onto the warm lane, and N more real reactions are submitted
   one after another while it runs: submit to result (`backlog_p50_ms`, against `cold_p50_ms`) and to the end of its
   device work (`backlog_device_p50_ms`: what the scheduling decides; the rest, MP4 encode and upload, runs beside
   the next warm job, which on a CPU shares its cores), and the time from a real job's arrival to the begin of its
   run (`start_after_arrival_ms_p50`, and `_max`: the warm job on the device gives way at its next step, or at the
   next chunk of its VAE decode), next to the step time (`step_ms_p50`);
3. warmed: N reactions warmed with `client.warm`, then, once ready, their real jobs: submit to result
   (`warmed_p50_ms`, cache hits of the warmed videos);
4. previews: N pairs of jobs, one that asks for previews and one that does not, the same otherwise, in turn: the
   first preview's delay after the first step's end (`first_preview_after_first_step_ms`, p50, against the step
   time) and what a preview at every step adds to a step (`preview_step_overhead`: the p50 step with previews over
   the p50 step without, less 1, over every step of the pairs).
"""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.inprocess import BenchError
from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus

WARM_BACKLOG = 20
READY_TIMEOUT_S = 3600.0
POLL_S = 0.005

Document = dict[str, Any]
Reaction = Callable[[str, int], Document]  # (job id, reaction number) -> the job's envelope


@dataclass(frozen=True)
class WarmFigures:
    reactions: int
    backlog: int
    cold_p50_ms: float
    cold_device_p50_ms: float | None
    warmed_p50_ms: float
    backlog_p50_ms: float
    backlog_device_p50_ms: float | None
    start_after_arrival_ms_p50: float
    start_after_arrival_ms_max: float
    step_ms_p50: float
    first_preview_after_first_step_ms: float | None
    preview_step_overhead: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WarmScenario:
    def __init__(self, client: NpcVideoClient, reaction: Reaction, reactions: int, label: str) -> None:
        self.client = client
        self.reaction = reaction
        self.reactions = reactions
        self.label = label  # makes the job ids of this row unique
        self._submitted_ms: dict[str, float] = {}  # unix ms just before each real job's submit
        self._device_ms: dict[str, float] = {}  # submit to the end of the job's device work (generate_ended_at)

    def measure(self) -> WarmFigures:
        cold = [self._timed(f"{self.label}-cold-{index}", 100 + index) for index in range(self.reactions)]
        backlog_ids = self._warm_backlog()
        with_backlog = [self._timed(f"{self.label}-busy-{index}", 300 + index) for index in range(self.reactions)]
        starts = [self._start_after_arrival(job_id) for job_id, _ms in with_backlog]
        steps = [step for job_id, _ms in with_backlog for step in self._step_ms(job_id)]
        self._wait_warm_ready(backlog_ids)
        warmed = self._warmed()
        first_preview, overhead = self._previews()
        return WarmFigures(
            reactions=self.reactions,
            backlog=WARM_BACKLOG,
            cold_p50_ms=statistics.median(ms for _id, ms in cold),
            cold_device_p50_ms=self._device_p50([job_id for job_id, _ms in cold]),
            warmed_p50_ms=statistics.median(warmed),
            backlog_p50_ms=statistics.median(ms for _id, ms in with_backlog),
            backlog_device_p50_ms=self._device_p50([job_id for job_id, _ms in with_backlog]),
            start_after_arrival_ms_p50=statistics.median(starts),
            start_after_arrival_ms_max=max(starts),
            step_ms_p50=statistics.median(steps) if steps else float("nan"),
            first_preview_after_first_step_ms=first_preview,
            preview_step_overhead=overhead,
        )

    # -- the parts ----------------------------------------------------------------------------------------------
    def _timed(self, job_id: str, number: int, *, lane: str = "high", expect_hit: bool = False) -> tuple[str, float]:
        """Submit one real job and wait for it: (job id, submit to result in ms)."""
        document = self.reaction(job_id, number)
        started = time.perf_counter()
        self._submitted_ms[job_id] = time.time() * 1000
        self.client.submit(document, lane=lane)
        result = self.client.wait(job_id, timeout_s=READY_TIMEOUT_S, poll_s=POLL_S)
        elapsed = (time.perf_counter() - started) * 1000
        if result.status != JobStatus.COMPLETED:
            raise BenchError(f"warm scenario: job {job_id} ended {result.status.value}: {result.error_message}")
        if result.cache_hit != expect_hit:
            raise BenchError(f"warm scenario: job {job_id} was {'not ' if expect_hit else ''}a cache hit")
        if result.timings is not None and result.timings.generate_ended_at is not None:
            self._device_ms[job_id] = result.timings.generate_ended_at - self._submitted_ms[job_id]
        return job_id, elapsed

    def _device_p50(self, job_ids: list[str]) -> float | None:
        measured = [self._device_ms[job_id] for job_id in job_ids if job_id in self._device_ms]
        return statistics.median(measured) if measured else None

    def _params(self, number: int) -> dict[str, Any]:
        params: dict[str, Any] = self.reaction("params", number)["params"]
        return params

    def _warm_backlog(self) -> list[str]:
        reactions = [self._params(1000 + index) for index in range(WARM_BACKLOG)]
        ids = self.client.warm({}, reactions)
        time.sleep(0.5)  # the worker takes the first warm job onto the device
        return ids

    def _warmed(self) -> list[float]:
        numbers = [500 + index for index in range(self.reactions)]
        reactions = [self._params(number) for number in numbers]
        self.client.warm({}, reactions)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.client.warm_status({}, reactions).ready_count < len(reactions):
            if time.monotonic() > deadline:
                raise BenchError("warm scenario: the warmed reactions were not ready in time")
            time.sleep(0.05)
        timed = []
        for number in numbers:
            job_id = f"{self.label}-warmed-{number}"
            document = {**self.reaction(job_id, number), "params": self._params(number)}
            started = time.perf_counter()
            self.client.submit(document, lane="high")
            result = self.client.wait(job_id, timeout_s=READY_TIMEOUT_S, poll_s=POLL_S)
            timed.append((time.perf_counter() - started) * 1000)
            if result.status != JobStatus.COMPLETED or not result.cache_hit:
                raise BenchError(f"warm scenario: the warmed reaction {job_id} was not a cache hit")
        return timed

    def _wait_warm_ready(self, ids: list[str]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        names = self.client.names
        while sum(value is not None for value in self.client.redis.hmget(names.warm_ready, ids)) < len(ids):
            if time.monotonic() > deadline:
                raise BenchError("warm scenario: the warm backlog did not finish in time")
            time.sleep(0.1)

    def _previews(self) -> tuple[float | None, float | None]:
        firsts: list[float] = []
        with_previews: list[float] = []
        without: list[float] = []
        for pair in range(self.reactions):
            watched = self.reaction(f"{self.label}-preview-on-{pair}", 700 + 2 * pair)
            watched["preview"] = True
            self.client.submit(watched, lane="high")
            self.client.wait(watched["job_id"], timeout_s=READY_TIMEOUT_S, poll_s=POLL_S)
            plain_id, _ms = self._timed(f"{self.label}-preview-off-{pair}", 701 + 2 * pair)
            events = self._events(watched["job_id"])
            first_step = next(
                (event["timestamp"] for event in events if event["type"] == "job:progress" and event["step"] == 1), None
            )
            previews = [event["timestamp"] for event in events if event["type"] == "job:preview"]
            if previews and first_step is not None:
                firsts.append(float(previews[0] - first_step))
            with_previews += self._step_ms(watched["job_id"])
            without += self._step_ms(plain_id)
        overhead = (
            statistics.median(with_previews) / statistics.median(without) - 1 if with_previews and without else None
        )
        return (statistics.median(firsts) if firsts else None), overhead

    # -- reading the events --------------------------------------------------------------------------------------
    def _events(self, job_id: str) -> list[dict[str, Any]]:
        raw: Any = self.client.redis.xrange(self.client.names.events)
        parsed = [json.loads(fields[b"event"]) for _id, fields in raw]
        return [event for event in parsed if event.get("job_id") == job_id]

    def _start_after_arrival(self, job_id: str) -> float:
        """From the producer's submit to the begin of the job's run (its job:processing event)."""
        begun = next(event["timestamp"] for event in self._events(job_id) if event["type"] == "job:processing")
        return float(begun - self._submitted_ms[job_id])

    def _step_ms(self, job_id: str) -> list[float]:
        marks = {event["step"]: event["timestamp"] for event in self._events(job_id) if event["type"] == "job:progress"}
        steps = sorted(marks)
        return [float(marks[b] - marks[a]) for a, b in itertools.pairwise(steps) if b == a + 1]
