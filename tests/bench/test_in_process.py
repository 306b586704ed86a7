"""`npc-worker bench` in-process on the tiny Wan model: the four files, the schema, stages that add up, a report
that needs nothing outside itself."""

from __future__ import annotations

import base64
import csv
import re
from datetime import datetime
from pathlib import Path

import pytest

from models.catalog import load_catalog
from npc_video_client.contract import QualityPreset
from pipelines.families import FAMILIES
from pipelines.presets import PRESETS
from tests.bench.conftest import load_valid_results
from tests.support.video import decode_mp4

PIPELINE_STAGES = {"text_encode", "image_encode", "denoise", "vae_decode", "frames_to_host"}
WORKER_STAGES = {"prepare", "load", "lora", *PIPELINE_STAGES, "encode", "upload"}


def test_writes_the_four_files_with_one_row_per_preset(in_process_run: Path) -> None:
    results = load_valid_results(in_process_run)  # validates against docs/schema/bench-results.schema.json
    rows = results["rows"]
    assert [(row["model"], row["preset"], row["setting"]) for row in rows] == [
        ("tiny-wan", "realtime", "catalog"),
        ("tiny-wan", "fast", "catalog"),
    ]
    for row in rows:
        assert (row["runs"], row["warmup"], len(row["e2e_ms"])) == (2, 1, 2)
        # frames and fps are what the model generated: 0.5 s at Wan's 16 fps, 8 snapped to 4k+1
        assert (row["steps"], row["width"], row["height"], row["frames"], row["fps"]) == (2, 64, 64, 9, 16)
        assert row["min_ms"] <= row["p50_ms"] <= row["p95_ms"] <= row["max_ms"]
        assert row["p50_ms"] == pytest.approx(sum(row["e2e_ms"]) / 2)
        assert row["output_bytes"] > 0 and row["host_rss_bytes"] > 0
        assert row["peak_device_bytes"] is None and row["peak_fraction"] is None  # CPU: no counter, no peak
        assert row["ran_model"] == "tiny-wan" and row["through"] == "in-process"
    with (in_process_run / "results.csv").open(encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert [(line["preset"], line["setting"]) for line in lines] == [(row["preset"], row["setting"]) for row in rows]
    assert float(lines[0]["p50_ms"]) == pytest.approx(rows[0]["p50_ms"])
    assert float(lines[0]["denoise_ms"]) == pytest.approx(rows[0]["stages"]["denoise"])
    assert lines[0]["generate_ms"] == ""  # in-process: generation is split into the pipeline's stages
    assert (in_process_run / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    environment = results["environment"]
    assert environment["device"] == "cpu" and environment["peak_bf16_tflops"] is None
    assert datetime.fromisoformat(environment["date"]).tzinfo is not None
    assert environment["overrides"] == {"width": 64, "height": 64, "steps": 2, "duration": 0.5}
    assert environment["settings"] == [{"name": "catalog", "kind": "catalog", "speed_overrides": {}}]
    assert environment["command"].startswith("npc-worker bench --catalog ")


def test_each_row_has_every_stage_of_its_path_and_none_exceeds_its_end_to_end_time(in_process_run: Path) -> None:
    """Structure, not timing (a loaded machine moves the sum: timings belong in the bench's figures)."""
    for row in load_valid_results(in_process_run)["rows"]:
        present = {stage for stage, value in row["stages"].items() if value is not None}
        assert present == WORKER_STAGES
        assert all(0 <= row["stages"][stage] <= row["max_ms"] for stage in present), row["stages"]
        assert all(row["stages"][stage] > 0 for stage in PIPELINE_STAGES)
        assert 0 < row["s_per_step"] * 1000 < row["stages"]["denoise"]


def test_flops_of_the_tiny_transformer_and_the_achieved_rate(in_process_run: Path) -> None:
    for row in load_valid_results(in_process_run)["rows"]:
        # 9 frames -> 3 latent frames of (64 / 8 / 2)^2 patches; cfg 1.5 (realtime) and 3.0 (fast) both guide
        assert row["latent_tokens"] == 48 and row["cfg_passes"] == 2
        assert row["flops_per_step"] > 0
        assert row["achieved_tflops"] == pytest.approx(row["flops_per_step"] / row["s_per_step"] / 1e12)


def test_the_report_is_self_contained_and_embeds_a_playable_video_per_row(in_process_run: Path, tmp_path: Path) -> None:
    html = (in_process_run / "report.html").read_text(encoding="utf-8")
    rows = load_valid_results(in_process_run)["rows"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    assert html.count('<img class="plot" src="data:image/png;base64,') == 1
    assert html.count('src="data:image/jpeg;base64,') == len(rows)  # a poster per row
    videos = re.findall(r'<video controls[^>]* src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(videos) == len(rows)
    for index, (video, row) in enumerate(zip(videos, rows, strict=True)):
        path = tmp_path / f"{index}.mp4"
        path.write_bytes(base64.b64decode(video))
        meta, frames = decode_mp4(path)
        fps = PRESETS[QualityPreset(row["preset"])].fps  # the file: resampled to the preset's rate
        assert meta["fps"] == pytest.approx(fps)
        timing = FAMILIES["wan-i2v"].frame_timing(fps, 0.5, "native")  # the SMOKE overrides' duration
        assert (timing.generated_frames, timing.generated_fps) == (row["frames"], row["fps"])
        assert frames.shape == (timing.num_frames, row["height"], row["width"], 3)
    for row in rows:
        assert f"<td class=name>{row['setting']}</td>" in html


def test_each_model_and_setting_ran_on_a_catalog_written_beside_the_results(
    in_process_run: Path, bench_catalog: Path
) -> None:
    derived = load_catalog(in_process_run / "catalogs" / "tiny-wan--catalog.toml")
    source = load_catalog(bench_catalog)
    assert derived.defaults.model == "tiny-wan"
    assert derived.models == source.models and derived.loras == source.loras
    assert sorted(path.name for path in (in_process_run / "media").iterdir()) == [
        "00-tiny-wan-realtime-catalog.jpg",
        "00-tiny-wan-realtime-catalog.mp4",
        "01-tiny-wan-fast-catalog.jpg",
        "01-tiny-wan-fast-catalog.mp4",
    ]
