"""The files of a bench run: results.json (docs/schema/bench-results.schema.json), results.csv, plot.png and
report.html. The tables are rewritten after every row (`write_tables`), each file replaced whole (written beside
it, then renamed), so a bench killed at any moment leaves complete files with every finished row."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from bench.html import write_html
from bench.plot import write_stage_plot
from bench.records import STAGES

CSV_LEADING = [
    "model",
    "ran_model",
    "preset",
    "setting",
    "through",
    "runs",
    "warmup",
    "p50_ms",
    "p95_ms",
    "min_ms",
    "max_ms",
    "steps",
    "s_per_step",
    "psnr_db",
]
CSV_TRAILING = [
    "peak_device_bytes",
    "host_rss_bytes",
    "host_rss_start_bytes",
    "output_bytes",
    "frames",
    "width",
    "height",
    "fps",
    "cfg",
    "cfg_passes",
    "latent_tokens",
    "flops_per_step",
    "achieved_tflops",
    "peak_fraction",
    "condition_first_ms",
    "condition_ms",
]
BURST_COLUMNS = ["jobs", "jobs_per_s", "busy_fraction", "gap_ms_p50", "gap_ms_p95"]
WARM_COLUMNS = [
    "cold_p50_ms",
    "cold_device_p50_ms",
    "warmed_p50_ms",
    "backlog_p50_ms",
    "backlog_device_p50_ms",
    "backlog_vs_cold_p50",
    "backlog_device_vs_cold_p50",
    "start_after_arrival_ms_p50",
    "start_after_arrival_ms_max",
    "step_ms_p50",
    "first_preview_after_first_step_ms",
    "preview_steps_apart_p50",
    "preview_cpu_ms",
    "preview_cpu_share",
    "preview_step_overhead",
]
CSV_COLUMNS = [
    *CSV_LEADING,
    *(f"{stage}_ms" for stage in STAGES),
    *CSV_TRAILING,
    *(f"burst_{name}" for name in BURST_COLUMNS),
    *(f"warm_{name}" for name in WARM_COLUMNS),
]


def replace_file(path: Path, text: str) -> None:
    """Write beside `path`, then rename over it: a reader (or a kill) never sees a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def write_json(results: dict[str, Any], path: Path) -> None:
    replace_file(path, json.dumps(results, indent=2) + "\n")


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """One line per row; stages as `<stage>_ms` columns, empty where null."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        line = {column: row.get(column) for column in (*CSV_LEADING, *CSV_TRAILING)}
        line.update({f"{stage}_ms": row["stages"].get(stage) for stage in STAGES})
        line.update({f"burst_{name}": (row.get("burst") or {}).get(name) for name in BURST_COLUMNS})
        line.update({f"warm_{name}": (row.get("warm") or {}).get(name) for name in WARM_COLUMNS})
        writer.writerow({key: "" if value is None else value for key, value in line.items()})
    replace_file(path, buffer.getvalue())


def write_tables(results: dict[str, Any], out: Path) -> dict[str, Path]:
    """results.json and results.csv: what the bench writes after every row."""
    paths = {"json": out / "results.json", "csv": out / "results.csv"}
    write_json(results, paths["json"])
    write_csv(results["rows"], paths["csv"])
    return paths


def write_outputs(results: dict[str, Any], out: Path) -> dict[str, Path]:
    paths = {**write_tables(results, out), "plot": out / "plot.png", "html": out / "report.html"}
    write_stage_plot(results["rows"], results["environment"], paths["plot"])
    write_html(results, out, paths["plot"], paths["html"])
    return paths


def load_results(path: Path) -> tuple[dict[str, Any], Path]:
    """A results.json (or the folder holding one) and the folder it is in."""
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read bench results {file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{file} is not JSON: {exc}") from exc
    if not isinstance(results, dict) or not isinstance(results.get("rows"), list):
        raise ValueError(f"{file} is not a bench results file (no top-level 'rows' list)")
    return results, file.parent
