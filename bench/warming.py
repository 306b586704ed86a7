"""Warm reactions and live previews, measured through the queue as a producer sees them (`--warm N`).

After a row's runs, on the row's own serve child (its previews at every step, NPC_WORKER_PREVIEW_INTERVAL_MS=0).
The machine's speed drifts by more than the effects measured here (on the shared 2-core development machine a
job's device time moved 50% within one run), so what is compared is measured in rounds, side by side, and the
ratios are taken per round:
1. N rounds, each of a cold job and a busy job, in turn (cold first in even rounds, busy first in odd ones, so a
   steady drift cancels): the cold job runs with the warm lane empty; for the busy job a warm backlog of
   `WARM_BACKLOG` other reactions goes onto the warm lane, the real job is submitted while a warm job runs, and
   once it has its result the backlog is cancelled (`client.warm_cancel`) and waited out. Per job: submit to
   result (`cold_p50_ms`, `backlog_p50_ms`; per round busy / cold - 1: `backlog_vs_cold_p50`) and submit to the end
   of its device work (`cold_device_p50_ms`, `backlog_device_p50_ms`, `backlog_device_vs_cold_p50`: what the
   scheduling decides; the rest, MP4 encode and upload, runs beside the warm job that resumes, which on a CPU
   shares its cores); the time from a busy job's arrival to the begin of its run (`start_after_arrival_ms_p50`,
   and `_max`: the warm job on the device gives way at its next step, or at the next chunk of its VAE decode), next
   to the step time (`step_ms_p50`);
2. warmed: N reactions warmed with `client.warm`, then, once ready, their real jobs: submit to result
   (`warmed_p50_ms`, cache hits of the warmed videos);
3. previews: N pairs of jobs, one that asks for previews and one that does not, the same otherwise, in turn (the
   one with previews first in even pairs): the first preview's delay after the first step's end
   (`first_preview_after_first_step_ms`, p50, against the step time), how many steps apart the previews came
   (`preview_steps_apart_p50`: as often as the worker's CPU budget for previews allows, worker.previews), the CPU
   time each took to encode and send (`preview_cpu_ms`, from the worker's /metrics) and all of it over the jobs'
   denoising time (`preview_cpu_share`: on a CPU device what the steps lose at most, and a figure the machine's
   drift does not move), and what they add to a step as timed (`preview_step_overhead`: per pair, the p50 step
   with previews over the p50 step without, less 1; the p50 of the pairs: drift moves it by several percent).
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
from bench.records import median_or_none
from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus

WARM_BACKLOG = 20
PREVIEWS, PREVIEW_CPU = "npc_previews_total", "npc_preview_cpu_seconds_total"
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
    backlog_vs_cold_p50: float
    backlog_device_vs_cold_p50: float | None
    start_after_arrival_ms_p50: float
    start_after_arrival_ms_max: float
    step_ms_p50: float
    first_preview_after_first_step_ms: float | None
    preview_steps_apart_p50: float | None
    preview_cpu_ms: float | None
    preview_cpu_share: float | None
    preview_step_overhead: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PreviewFigures:
    first_after_first_step_ms: float | None
    steps_apart_p50: float | None
    cpu_ms: float | None  # per preview: encoding and sending it (the worker's npc_preview_cpu_seconds_total)
    cpu_share: float | None  # all of it over the denoising time of the jobs with previews
    step_overhead: float | None


class WarmScenario:
    def __init__(
        self,
        client: NpcVideoClient,
        reaction: Reaction,
        reactions: int,
        label: str,
        counters: Callable[[], dict[str, float]],
    ) -> None:
        self.client = client
        self.counters = counters  # the serve child's /metrics counters
        self.reaction = reaction
        self.reactions = reactions
        self.label = label  # makes the job ids of this row unique
        self._submitted_ms: dict[str, float] = {}  # unix ms just before each real job's submit
        self._device_ms: dict[str, float] = {}  # submit to the end of the job's device work (generate_ended_at)

    def measure(self) -> WarmFigures:
        cold: list[tuple[str, float]] = []
        busy: list[tuple[str, float]] = []
        for round_number in range(self.reactions):
            for kind in ("cold", "busy") if round_number % 2 == 0 else ("busy", "cold"):
                if kind == "cold":
                    cold.append(self._timed(f"{self.label}-cold-{round_number}", 100 + round_number))
                else:
                    busy.append(self._behind_backlog(round_number))
        starts = [self._start_after_arrival(job_id) for job_id, _ms in busy]
        steps = [step for job_id, _ms in busy for step in self._step_ms(job_id)]
        warmed = self._warmed()
        previews = self._previews()
        return WarmFigures(
            reactions=self.reactions,
            backlog=WARM_BACKLOG,
            cold_p50_ms=statistics.median(ms for _id, ms in cold),
            cold_device_p50_ms=self._device_p50([job_id for job_id, _ms in cold]),
            warmed_p50_ms=statistics.median(warmed),
            backlog_p50_ms=statistics.median(ms for _id, ms in busy),
            backlog_device_p50_ms=self._device_p50([job_id for job_id, _ms in busy]),
            backlog_vs_cold_p50=statistics.median(b / c - 1 for (_b, b), (_c, c) in zip(busy, cold, strict=True)),
            backlog_device_vs_cold_p50=self._device_ratio_p50(busy, cold),
            start_after_arrival_ms_p50=statistics.median(starts),
            start_after_arrival_ms_max=max(starts),
            step_ms_p50=statistics.median(steps) if steps else float("nan"),
            first_preview_after_first_step_ms=previews.first_after_first_step_ms,
            preview_steps_apart_p50=previews.steps_apart_p50,
            preview_cpu_ms=previews.cpu_ms,
            preview_cpu_share=previews.cpu_share,
            preview_step_overhead=previews.step_overhead,
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
        return median_or_none([self._device_ms[job_id] for job_id in job_ids if job_id in self._device_ms])

    def _params(self, number: int) -> dict[str, Any]:
        params: dict[str, Any] = self.reaction("params", number)["params"]
        return params

    def _behind_backlog(self, round_number: int) -> tuple[str, float]:
        """A real job submitted while a warm backlog runs; the backlog is cancelled and waited out afterwards, so
        the round's cold job finds the warm lane empty."""
        first = 1000 + round_number * WARM_BACKLOG
        reactions = [self._params(first + index) for index in range(WARM_BACKLOG)]
        cursor = self.client.events_cursor()
        ids = self.client.warm({}, reactions)
        time.sleep(0.5)  # the worker takes the first warm job onto the device
        timed = self._timed(f"{self.label}-busy-{round_number}", 300 + round_number)
        self.client.warm_cancel({}, reactions)
        self._wait_ended(ids, cursor)
        return timed

    def _wait_ended(self, ids: list[str], cursor: str) -> None:
        """Until every one of these warm jobs has its end event (finished before its cancel, or cancelled)."""
        waiting, deadline = set(ids), time.monotonic() + READY_TIMEOUT_S
        while waiting:
            if time.monotonic() > deadline:
                raise BenchError(f"warm scenario: {len(waiting)} cancelled warm jobs did not end in time")
            entries: Any = self.client.redis.xrange(self.client.names.events, min=f"({cursor}")
            for entry_id, fields in entries:
                cursor = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                waiting.discard(json.loads(fields[b"event"]).get("job_id"))
            time.sleep(0.05)

    def _device_ratio_p50(self, busy: list[tuple[str, float]], cold: list[tuple[str, float]]) -> float | None:
        return median_or_none(
            [
                self._device_ms[b] / self._device_ms[c] - 1
                for (b, _b), (c, _c) in zip(busy, cold, strict=True)
                if b in self._device_ms and c in self._device_ms
            ]
        )

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

    def _previews(self) -> PreviewFigures:
        firsts: list[float] = []
        apart: list[int] = []
        ratios: list[float] = []
        denoising_ms = 0.0  # of the jobs with previews: from their begin to their last step
        before = self.counters()
        for pair in range(self.reactions):
            watched = self.reaction(f"{self.label}-preview-on-{pair}", 700 + 2 * pair)
            watched["preview"] = True
            plain_id = f"{self.label}-preview-off-{pair}"
            for watching in (True, False) if pair % 2 == 0 else (False, True):
                if watching:
                    self.client.submit(watched, lane="high")
                    self.client.wait(watched["job_id"], timeout_s=READY_TIMEOUT_S, poll_s=POLL_S)
                else:
                    self._timed(plain_id, 701 + 2 * pair)
            events = self._events(watched["job_id"])
            steps = _step_marks(events)
            begun = next(event["timestamp"] for event in events if event["type"] == "job:processing")
            previews = [event for event in events if event["type"] == "job:preview"]
            if previews and 1 in steps:
                firsts.append(float(previews[0]["timestamp"] - steps[1]))
            apart += [b["step"] - a["step"] for a, b in itertools.pairwise(previews)]
            denoising_ms += max(steps.values(), default=begun) - begun
            with_previews, without = _step_intervals(steps), self._step_ms(plain_id)
            if with_previews and without:
                ratios.append(statistics.median(with_previews) / statistics.median(without) - 1)
        after = self.counters()
        sent = after.get(PREVIEWS, 0.0) - before.get(PREVIEWS, 0.0)
        cpu_ms = (after.get(PREVIEW_CPU, 0.0) - before.get(PREVIEW_CPU, 0.0)) * 1000
        return PreviewFigures(
            first_after_first_step_ms=median_or_none(firsts),
            steps_apart_p50=median_or_none(apart),
            cpu_ms=cpu_ms / sent if sent else None,
            cpu_share=cpu_ms / denoising_ms if sent and denoising_ms > 0 else None,
            step_overhead=median_or_none(ratios),
        )

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
        return _step_intervals(_step_marks(self._events(job_id)))


def _step_marks(events: list[dict[str, Any]]) -> dict[int, float]:
    """Step -> the timestamp of its job:progress event."""
    return {event["step"]: event["timestamp"] for event in events if event["type"] == "job:progress"}


def _step_intervals(marks: dict[int, float]) -> list[float]:
    """ms between consecutive steps' progress events."""
    steps = sorted(marks)
    return [float(marks[b] - marks[a]) for a, b in itertools.pairwise(steps) if b == a + 1]
