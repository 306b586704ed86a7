"""One bench run: the matrix of models x settings x presets, measured row by row, written as results.

Everything that can be refused (unknown names, speed tables that do not validate) is checked before the first job
runs. A group (model, setting) loads its model once; each of its rows (presets) runs `warmup` unmeasured jobs
and `repeats` measured ones, each with its own seed.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from bench.burst import Burst
from bench.catalogs import derived_catalog, write_derived_catalog
from bench.flops import Config, StepFlops, device_peak_tflops, guidance_passes, step_flops
from bench.inprocess import BenchError, InProcessGroup
from bench.jobs import envelope
from bench.machine import environment, is_cuda
from bench.options import BenchUsageError, Setting
from bench.psnr import BASELINE_SETTING, Output, json_psnr, row_psnr
from bench.queue import QueueGroup, bench_redis
from bench.records import STAGES, Row, RunRecord, median_or_none, summarize
from bench.warming import WarmFigures, WarmScenario
from bench.worker_api import Settings
from models.catalog import Catalog
from npc_video_client.contract import QualityPreset, describe_validation_error
from npc_video_client.errors import JobError

log = logging.getLogger(__name__)
THROUGH_IN_PROCESS = "in-process"
THROUGH_QUEUE = "queue"
SCHEMA_VERSION = 1


class Group(Protocol):
    def run(self, document: dict[str, Any]) -> RunRecord: ...

    def configs(self, model: str) -> dict[str, Config | None] | None: ...

    def reset_peak(self) -> None: ...

    def peak_device_bytes(self) -> int | None: ...

    def host_rss_bytes(self) -> int | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BenchPlan:
    catalog: Catalog
    models: list[str]
    presets: list[QualityPreset]
    settings: list[Setting]
    repeats: int
    warmup: int
    overrides: dict[str, Any]
    through: str
    redis_url: str | None
    out: Path
    image_uri: str
    worker_settings: Settings
    command: list[str]
    burst: int = 0  # with --through queue: N jobs submitted at once after each row's runs (bench.burst)
    warm: int = 0  # with --through queue: the warm-lane and preview scenario with N reactions (bench.warming)
    loras: list[str] = field(default_factory=list)  # --loras: run i of every row takes loras[i % len(loras)]
    swap_with: str | None = None  # --swap-with: brought onto the device before each in-process run

    @property
    def total_rows(self) -> int:
        return len(self.models) * len(self.settings) * len(self.presets)

    @property
    def total_runs(self) -> int:
        return self.total_rows * (self.warmup + self.repeats + (1 if self.burst else 0) + (1 if self.warm else 0))

    def check(self) -> None:
        """Build every derived catalog and worker settings in memory: what does not validate is refused now."""
        if self.burst and self.through != THROUGH_QUEUE:
            raise BenchUsageError("--burst measures a full queue: it needs --through queue")
        if self.warm and self.through != THROUGH_QUEUE:
            raise BenchUsageError(
                "--warm measures the warm lane and previews as a producer sees them: it needs --through queue"
            )
        if self.swap_with and self.through != THROUGH_IN_PROCESS:
            raise BenchUsageError("--swap-with moves models inside this process: it needs --through in-process")
        for model in self.models:
            for setting in self.settings:
                derived_catalog(self.catalog, model, setting)
        for setting in self.settings:
            if self.settings_for(setting).group_size > 1 and self.through != THROUGH_QUEUE:
                raise BenchUsageError(
                    f"--setting {setting.name}: worker.group_size runs a worker group, one serve process per "
                    "device: it needs --through queue"
                )

    def settings_for(self, setting: Setting) -> Settings:
        """The worker settings of one setting's worker: the bench's, with the setting's `worker.` values."""
        if not setting.worker:
            return self.worker_settings
        try:
            return Settings.model_validate({**self.worker_settings.model_dump(), **setting.worker})
        except ValidationError as exc:
            raise BenchUsageError(f"--setting {setting.name}: {describe_validation_error(exc, 'worker')}") from exc

    def describe(self) -> dict[str, Any]:
        return {
            "through": self.through,
            "catalog": str(self.catalog.source) if self.catalog.source else None,
            "models": self.models,
            "presets": [preset.value for preset in self.presets],
            "settings": [setting.describe() for setting in self.settings],
            "speed_tables": {
                f"{model}/{setting.name}": setting.speed_for(self.catalog.models[model].speed).model_dump(
                    mode="json", exclude_none=True
                )
                for model in self.models
                for setting in self.settings
            },
            "repeats": self.repeats,
            "warmup": self.warmup,
            "overrides": self.overrides,
            "loras": self.loras,
            "swap_with": self.swap_with,
        }


Advance = Callable[[str], None]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


Checkpoint = Callable[[dict[str, Any]], object]


class Session:
    def __init__(self, plan: BenchPlan, advance: Advance) -> None:
        self.plan = plan
        self.advance = advance
        self.token = uuid.uuid4().hex[:8]
        self.device = plan.worker_settings.resolved_device()
        self.rows: list[Row] = []
        self.outputs: list[list[Output]] = []  # per row: where each measured run's frames are (bench.psnr)
        self._psnr_pending: set[int] = set()  # rows whose baseline row has not run yet
        self.environment: dict[str, Any] = {}
        self.state = "running"  # running, complete, stopped or failed (the results' `progress`)
        names = [setting.name for setting in plan.settings]
        self.keep_frames = BASELINE_SETTING in names and len(names) > 1  # something to compare with the baseline

    def results(self) -> dict[str, Any]:
        """The results document of the rows measured so far (all of them once `run` returned)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "progress": {"state": self.state, "rows_done": len(self.rows), "rows_planned": self.plan.total_rows},
            "environment": self.environment,
            "rows": [row.to_json() for row in self.rows],
        }

    def run(self, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
        """Measure the matrix; `checkpoint` gets the results document after every finished row (the command
        writes results.json and results.csv with it, so a bench stopped at any moment keeps its finished rows)."""
        plan = self.plan
        plan.check()
        plan.out.mkdir(parents=True, exist_ok=True)
        self.environment = environment(self.device, plan.command, plan.describe())
        peak_tflops = device_peak_tflops(self.environment["device_name"]) if is_cuda(self.device) else None
        with ExitStack() as stack:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="npc-bench-")))
            redis_url = None
            if plan.through == THROUGH_QUEUE and any(not setting.stock for setting in plan.settings):
                redis_url = stack.enter_context(bench_redis(plan.redis_url))
            for model in plan.models:
                for setting in plan.settings:
                    with self._group(model, setting, scratch, redis_url) as group:
                        for preset in plan.presets:
                            row, outputs = self._row(group, model, preset, setting, peak_tflops)
                            self._add(row, outputs)  # while the scratch folder holds the runs' frames
                            if checkpoint is not None:
                                checkpoint(self.results())
        self.state = "complete"
        return self.results()

    def _add(self, row: Row, outputs: list[Output]) -> None:
        """Keep a finished row, and give it (or the rows waiting for it, when it is a baseline) its psnr_db against
        the baseline row (the `catalog` setting) of the same model and preset."""
        self.rows.append(row)
        self.outputs.append(outputs)
        index = len(self.rows) - 1
        if row.setting == BASELINE_SETTING:
            waiting = [
                i for i in self._psnr_pending if (self.rows[i].model, self.rows[i].preset) == (row.model, row.preset)
            ]
            for i in waiting:
                self.rows[i].psnr_db = json_psnr(row_psnr(self.outputs[i], outputs))
                self._psnr_pending.discard(i)
            return
        baseline = next(
            (
                i
                for i, other in enumerate(self.rows)
                if other.setting == BASELINE_SETTING and (other.model, other.preset) == (row.model, row.preset)
            ),
            None,
        )
        if baseline is None:
            self._psnr_pending.add(index)
        else:
            row.psnr_db = json_psnr(row_psnr(outputs, self.outputs[baseline]))

    @contextmanager
    def _group(self, model: str, setting: Setting, scratch: Path, redis_url: str | None) -> Iterator[Group]:
        plan = self.plan
        catalog_path = write_derived_catalog(plan.catalog, model, setting, plan.out / "catalogs")
        directory = scratch / f"{_slug(model)}--{setting.name}"
        directory.mkdir(parents=True)
        group: Group
        worker_settings = plan.settings_for(setting)
        if redis_url is not None and not setting.stock:
            log_path = plan.out / "logs" / f"serve-{_slug(model)}--{setting.name}.log"
            env = {**setting.worker, **({"preview_interval_ms": 0} if plan.warm else {})}  # a preview at every step
            group = QueueGroup(
                worker_settings, catalog_path, directory, redis_url=redis_url, log_path=log_path, env=env
            )
        else:  # stock is the bare pipeline call: in this process whatever --through says
            group = InProcessGroup(
                worker_settings,
                catalog_path,
                directory,
                stock=setting.stock,
                keep_frames=self.keep_frames,
                swap_with=plan.swap_with,
            )
        try:
            yield group
        finally:
            group.close()

    def _row(
        self, group: Group, model: str, preset: QualityPreset, setting: Setting, peak: float | None
    ) -> tuple[Row, list[Output]]:
        """One row measured, and where its measured runs' frames are (for psnr_db)."""
        plan = self.plan
        number = len(self.rows)
        label = f"{model} / {preset.value} / {setting.name}"
        group.reset_peak()
        records: list[RunRecord] = []
        first: RunRecord | None = None
        rss_start: int | None = None
        for index in range(plan.warmup + plan.repeats):
            job_id = f"bench-{self.token}-{number}-{index}"
            loras = [plan.loras[index % len(plan.loras)]] if plan.loras else None
            if index == plan.warmup:
                rss_start = group.host_rss_bytes()
            try:
                record = group.run(envelope(job_id, plan.image_uri, preset, index, plan.overrides, loras=loras))
            except BenchError:
                raise
            except Exception as exc:  # a failed job ends the bench with what it was and where
                reason = (
                    f"{exc.code.value}: {exc.message}" if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
                )
                raise BenchError(f"{label}: job {job_id} failed: {reason}") from exc
            self.advance(label)
            if first is None:
                first = record  # the cold one: prompt and image not cached, the model maybe not loaded yet
            if index >= plan.warmup:
                records.append(record)
        assert first is not None  # repeats >= 1
        summary = summarize(records)
        burst = self._burst(group, number, preset) if plan.burst and isinstance(group, QueueGroup) else None
        warm = self._warm(group, number, preset) if plan.warm and isinstance(group, QueueGroup) else None
        measured = records[0]
        flops = self._flops(group, measured)
        flops_per_step = flops.flops_per_step if flops else None
        achieved = flops_per_step / summary.s_per_step / 1e12 if flops_per_step and summary.s_per_step else None
        video, poster = self._keep_media(measured, f"{number:02d}-{model}-{preset.value}-{setting.name}")
        row = Row(
            model=model,
            ran_model=measured.ran_model,
            preset=preset.value,
            setting=setting.name,
            through=THROUGH_IN_PROCESS if setting.stock or plan.through == THROUGH_IN_PROCESS else THROUGH_QUEUE,
            runs=len(records),
            warmup=plan.warmup,
            p50_ms=summary.p50_ms,
            p95_ms=summary.p95_ms,
            min_ms=summary.min_ms,
            max_ms=summary.max_ms,
            e2e_ms=[record.e2e_ms for record in records],
            steps=measured.steps,
            frames=measured.frames,
            width=measured.width,
            height=measured.height,
            fps=measured.fps,
            cfg=measured.cfg,
            cfg_passes=guidance_passes(measured.cfg),
            s_per_step=summary.s_per_step,
            stages=summary.stages,
            peak_device_bytes=group.peak_device_bytes(),
            host_rss_bytes=group.host_rss_bytes(),
            output_bytes=summary.output_bytes,
            latent_tokens=flops.tokens.latent if flops else None,
            flops_per_step=flops_per_step,
            achieved_tflops=achieved,
            peak_fraction=achieved / peak if achieved is not None and peak else None,
            video=video,
            poster=poster,
            condition_first_ms=first.condition_ms,
            condition_ms=median_or_none([r.condition_ms for r in records if r.condition_ms is not None]),
            burst=burst.to_json() if burst else None,
            warm=warm.to_json() if warm else None,
            first_run_stages={stage: first.stages.get(stage) for stage in STAGES},
            host_rss_start_bytes=rss_start,
        )
        return row, [Output(record.frames_file, record.video) for record in records]

    def _burst(self, group: QueueGroup, number: int, preset: QualityPreset) -> Burst:
        plan = self.plan
        documents = [
            envelope(f"bench-{self.token}-{number}-burst-{index}", plan.image_uri, preset, 1000 + index, plan.overrides)
            for index in range(plan.burst)
        ]
        burst = group.burst(documents)
        self.advance(f"burst of {plan.burst}")
        return burst

    def _warm(self, group: QueueGroup, number: int, preset: QualityPreset) -> WarmFigures:
        plan = self.plan

        def reaction(job_id: str, index: int) -> dict[str, Any]:
            document = envelope(job_id, plan.image_uri, preset, 0, plan.overrides)
            document["params"]["expression"] = f"reaction {index}"  # each reaction its own video
            return document

        label = f"bench-{self.token}-{number}"
        figures = WarmScenario(group.client, reaction, plan.warm, label, counters=group.serve.counters).measure()
        self.advance(f"warm scenario of {plan.warm} reactions")
        return figures

    def _flops(self, group: Group, record: RunRecord) -> StepFlops | None:
        family = self.plan.catalog.models[record.ran_model].family
        try:
            configs = group.configs(record.ran_model)
            if configs is None:
                log.warning("model %s: no component configs readable here: FLOPs are null", record.ran_model)
                return None
            return step_flops(
                family, configs, width=record.width, height=record.height, frames=record.frames, cfg=record.cfg
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            log.warning("model %s: FLOPs not estimated (%s: %s): null", record.ran_model, type(exc).__name__, exc)
            return None

    def _keep_media(self, record: RunRecord, name: str) -> tuple[str | None, str | None]:
        """Copy one run's MP4 and poster into DIR/media (the scratch storage goes when the bench ends)."""
        media = self.plan.out / "media"
        media.mkdir(exist_ok=True)
        kept: list[str | None] = []
        for source, suffix in ((record.video, ".mp4"), (record.poster, ".jpg")):
            if source is None or not source.is_file():
                kept.append(None)
                continue
            target = media / f"{_slug(name)}{suffix}"
            shutil.copyfile(source, target)
            kept.append(target.relative_to(self.plan.out).as_posix())
        return kept[0], kept[1]
