"""Runs through the queue, as a producer sees them: a real Redis, a real `npc-worker serve` child process, jobs
submitted with the producer client and timed from submit to result.

Each group (model, setting) gets its own serve process on the derived catalog and its own key prefix, so a
shared Redis's real queues are never touched and the bench's keys are deleted afterwards. Per-step durations
come from the worker's progress events (the child publishes one per step): millisecond timestamps taken in the
step callback, without device synchronization.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.burst import Burst, measure
from bench.flops import Config, configs_of_checkpoint
from bench.inprocess import BenchError, file_of
from bench.machine import rss_bytes
from bench.records import RunRecord
from bench.worker_api import SERVE_COMMAND, LocalRedisError, Settings, answers, free_port, throwaway_redis
from npc_video_client.client import NpcVideoClient
from npc_video_client.contract import JobStatus

log = logging.getLogger(__name__)
READY_TIMEOUT_S = 1800.0  # a full-size model can take minutes to load
JOB_TIMEOUT_S = 3600.0
STOP_TIMEOUT_S = 120.0
POLL_S = 0.005  # the client's result polling: short, so it adds little to the measured latency


@contextmanager
def bench_redis(url: str | None) -> Iterator[str]:
    """The Redis at `url` (it must answer), or a throw-away redis-server on a free loopback port."""
    if url is not None:
        if not answers(url):
            raise BenchError(f"no Redis answers at --redis-url {url}")
        yield url
        return
    try:
        with throwaway_redis("npc-bench-redis-") as local_url:
            yield local_url
    except LocalRedisError as exc:
        raise BenchError(f"--through queue needs a Redis: {exc}, or give --redis-url") from exc


def group_devices(device: str, size: int) -> list[str]:
    """The serve child's device flags: `--device D` for one process, or `--devices ... --group N` for a worker group
    (`--setting g4:worker.group_size=4`: the first N GPUs, or N CPU processes); its leader serves the HTTP port."""
    if size <= 1:
        return ["--device", device]
    devices = ",".join(["cpu"] * size) if device == "cpu" else ",".join(str(index) for index in range(size))
    return ["--devices", devices, "--group", str(size)]


class ServeProcess:
    """`npc-worker serve` as a child process; stopped with SIGTERM (the worker finishes and exits 0)."""

    def __init__(
        self,
        settings: Settings,
        catalog: Path,
        *,
        storage_url: str,
        redis_url: str,
        prefix: str,
        log_path: Path,
        worker_env: dict[str, Any] | None = None,
    ) -> None:
        """`worker_env`: worker settings for the child (field name -> value), as NPC_WORKER_* variables."""
        self.http_port = free_port()
        self.log_path = log_path
        env = dict(os.environ)
        env.update(
            NPC_WORKER_REDIS_URL=redis_url,
            NPC_WORKER_PREFIX=prefix,
            NPC_WORKER_CONSUMER=prefix,
            NPC_WORKER_HTTP_HOST="127.0.0.1",
            NPC_WORKER_HTTP_PORT=str(self.http_port),
            NPC_WORKER_PROGRESS_INTERVAL_MS="0",
        )
        env.update({f"NPC_WORKER_{name.upper()}": str(value) for name, value in (worker_env or {}).items()})
        command = [*SERVE_COMMAND, "--catalog", str(catalog), "--storage-url", storage_url]
        command += group_devices(settings.device, int((worker_env or {}).get("group_size", 1)))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def _log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.http_port}/readyz"
        while True:
            if self.process.poll() is not None:
                raise BenchError(
                    f"npc-worker serve exited with status {self.process.returncode} before it was ready "
                    f"(log {self.log_path}):\n{self._log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or not ready (503)
            if time.monotonic() > deadline:
                raise BenchError(f"npc-worker serve was not ready after {timeout_s:.0f} s (log {self.log_path})")
            time.sleep(0.2)

    def counters(self) -> dict[str, float]:
        """The serve child's counters on /metrics, by sample name (`npc_previews_total`, ...)."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode("utf-8")
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            if family.type == "counter"
            for sample in family.samples
            if not sample.labels
        }

    def stop(self) -> int:
        """SIGTERM and wait; a worker that does not exit in time is killed. Returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()
        return int(self.process.returncode)


class QueueGroup:
    """One (model, setting) through the queue: a serve process and a producer client under a fresh prefix."""

    def __init__(
        self,
        settings: Settings,
        catalog: Path,
        scratch: Path,
        *,
        redis_url: str,
        log_path: Path,
        env: dict[str, Any] | None = None,
    ) -> None:
        self.prefix = f"npc-bench-{uuid.uuid4().hex[:12]}"
        self.catalog = catalog
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=30)
        self.client = NpcVideoClient(redis_url, self.prefix, client=self.redis)
        self.serve = ServeProcess(
            settings,
            catalog,
            storage_url=f"file://{scratch / 'outputs'}",
            redis_url=redis_url,
            prefix=self.prefix,
            log_path=log_path,
            worker_env=env,
        )
        self._last_event = "0-0"
        try:
            self.serve.wait_ready()
        except BaseException:
            self.close()
            raise

    def run(self, document: dict[str, Any]) -> RunRecord:
        started = time.perf_counter()
        job_id = self.client.submit(document, lane="high")
        result = self.client.wait(job_id, timeout_s=JOB_TIMEOUT_S, poll_s=POLL_S)
        e2e_ms = (time.perf_counter() - started) * 1000
        if result.status != JobStatus.COMPLETED:
            raise BenchError(f"job {job_id} ended {result.status.value}: {result.error_code} {result.error_message}")
        if result.cache_hit:
            raise BenchError(f"job {job_id} was a cache hit: a benchmark must generate every run")
        timings = result.timings
        load_ms = timings.load_ms + timings.swap_ms
        stages = {
            "queue": timings.queue_ms or 0.0,
            "prepare": timings.prepare_ms - load_ms,
            "load": load_ms,
            "generate": timings.generate_ms,
            "encode": timings.encode_ms,
            "upload": timings.upload_ms,
        }
        stages["transport"] = e2e_ms - sum(stages.values())
        video = file_of(result.url)
        return RunRecord(
            e2e_ms=e2e_ms,
            stages=stages,
            steady_step_seconds=self._step_seconds(job_id),
            steps=result.steps or 0,
            frames=result.generated_frames or result.num_frames or 0,
            width=result.width or 0,
            height=result.height or 0,
            fps=result.generated_fps or result.fps or 0,
            cfg=result.cfg or 0.0,
            ran_model=result.model or "",
            output_bytes=video.stat().st_size if video else None,
            video=video,
            poster=file_of(result.thumbnail_url),
            condition_ms=timings.condition_ms,
        )

    def burst(self, documents: list[dict[str, Any]]) -> Burst:
        """Submit every document at once (one lane), wait for all, and measure the device (bench.burst)."""
        started = time.perf_counter()
        job_ids = [self.client.submit(document, lane="high") for document in documents]
        results = [self.client.wait(job_id, timeout_s=JOB_TIMEOUT_S, poll_s=POLL_S) for job_id in job_ids]
        wall_ms = (time.perf_counter() - started) * 1000
        failed = [result for result in results if result.status != JobStatus.COMPLETED or result.cache_hit]
        if failed:
            first = failed[0]
            raise BenchError(f"burst job {first.job_id} ended {first.status.value}: {first.error_message}")
        return measure(results, wall_ms)

    def _step_seconds(self, job_id: str) -> list[float]:
        """Durations between consecutive progress events of the job (so the first step is never among them)."""
        marks: dict[int, int] = {}
        stream = self.client.names.events
        reply: Any = self.redis.xread({stream: self._last_event})
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                self._last_event = entry_id.decode()
                event = json.loads(fields[b"event"])
                if event.get("type") == "job:progress" and event.get("job_id") == job_id:
                    marks[int(event["step"])] = int(event["timestamp"])
        steps = sorted(marks)
        return [
            (marks[later] - marks[earlier]) / 1000
            for earlier, later in itertools.pairwise(steps)
            if later == earlier + 1
        ]

    def configs(self, model: str) -> dict[str, Config | None] | None:
        """From the checkpoint folder on disk (the model lives in the child process)."""
        from models.catalog import load_catalog

        path = getattr(load_catalog(self.catalog).models[model], "path", None)
        return configs_of_checkpoint(Path(path)) if path else None

    def reset_peak(self) -> None:
        return None  # the device memory is the child's: not readable from here

    def peak_device_bytes(self) -> int | None:
        return None

    def host_rss_bytes(self) -> int | None:
        return rss_bytes(self.serve.process.pid)

    def close(self) -> None:
        try:
            status = self.serve.stop()
            if status != 0:
                log.warning(
                    "npc-worker serve exited with status %s after SIGTERM (log %s)", status, self.serve.log_path
                )
        finally:
            for key in self.redis.scan_iter(match=f"{self.prefix}:*"):
                self.redis.delete(key)
            self.redis.close()
