"""report.html: one self-contained page (inline CSS, the plot, posters and videos as data: URIs), readable offline."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

from bench.records import STAGES

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px 32px; color: #1d232a; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: #5b6570; margin: 0 0 8px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e7eb; text-align: right; white-space: nowrap; }
th { background: #f3f5f7; font-weight: 600; } td.name, th.name { text-align: left; }
tr:hover td { background: #fafbfc; }
img.plot { max-width: 100%; border: 1px solid #e3e7eb; }
.cards { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; padding: 10px; border: 1px solid #e3e7eb; border-radius: 6px; background: #fafbfc; }
figure .media { display: flex; gap: 8px; align-items: flex-start; }
figure img, figure video { width: 240px; height: auto; background: #000; }
figcaption { margin-top: 6px; font-size: 13px; color: #3a434c; }
.env td { text-align: left; white-space: normal; } .env td:first-child { font-weight: 600; white-space: nowrap; }
.note { color: #5b6570; font-size: 13px; max-width: 980px; }
.scroll { overflow-x: auto; max-width: 100%; }
"""


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _bytes(value: Any) -> str:
    if value is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value} B"


def _flops(value: Any) -> str:
    if value is None:
        return "-"
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if value >= size:
            return f"{value / size:,.2f} {unit}"
    return f"{value:,.0f} FLOP"


def _cells(values: list[str], header: bool = False, names: int = 0) -> str:
    tag = "th" if header else "td"
    return "".join(
        f"<{tag}{' class=name' if index < names else ''}>{escape(value)}</{tag}>" for index, value in enumerate(values)
    )


def _psnr(value: Any) -> str:
    """A row's psnr_db: "inf" (identical to the baseline), a number, or null (the baseline, or nothing to compare)."""
    if value is None:
        return "-"
    return "identical" if value == "inf" else f"{value:.2f}"


def _percent(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _signed_percent(value: Any) -> str:
    return "-" if value is None else f"{value * 100:+.1f} %"


Column = tuple[str, Callable[[dict[str, Any]], str]]


def _conditioning(row: dict[str, Any]) -> str:
    first, cached = row.get("condition_first_ms"), row.get("condition_ms")
    return "" if first is None and cached is None else f"{_number(first)} / {_number(cached)}"


def _warm(warm: dict[str, Any] | None) -> str:
    if not warm:
        return "-"
    latencies = " / ".join(_number(warm[name], 1) for name in ("cold_p50_ms", "warmed_p50_ms", "backlog_p50_ms"))
    backlog, preview = _signed_percent(warm["backlog_vs_cold_p50"]), _percent(warm["preview_cpu_share"])
    return f"{latencies} ({backlog}); preview {preview}"


def _burst(burst: dict[str, Any] | None) -> str:
    if not burst:
        return ""
    return f"{_number(burst['jobs_per_s'], 2)}, {_percent(burst['busy_fraction'])}, {_number(burst['gap_ms_p50'], 1)}"


RESULT_COLUMNS: list[Column] = [
    ("model", lambda row: row["model"]),
    ("preset", lambda row: row["preset"]),
    ("setting", lambda row: row["setting"]),
    ("runs", lambda row: str(row["runs"])),
    ("p50 ms", lambda row: _number(row["p50_ms"])),
    ("p95 ms", lambda row: _number(row["p95_ms"])),
    ("min ms", lambda row: _number(row["min_ms"])),
    ("max ms", lambda row: _number(row["max_ms"])),
    ("steps", lambda row: str(row["steps"])),
    ("s / step", lambda row: _number(row["s_per_step"], 3)),
    ("PSNR dB", lambda row: _psnr(row.get("psnr_db"))),
    ("frames", lambda row: str(row["frames"])),
    ("size", lambda row: f"{row['width']}x{row['height']}"),
    ("cfg", lambda row: f"{row['cfg']:g}" + (" (x2)" if row.get("cfg_passes") == 2 else "")),
    ("peak device", lambda row: _bytes(row["peak_device_bytes"])),
    ("host RSS", lambda row: _bytes(row["host_rss_bytes"])),
    ("MP4", lambda row: _bytes(row["output_bytes"])),
    ("FLOP / step", lambda row: _flops(row["flops_per_step"])),
    ("TFLOP/s", lambda row: _number(row["achieved_tflops"], 2)),
    ("% of peak", lambda row: _percent(row["peak_fraction"])),
    ("conditioning ms: first / cached", _conditioning),
    ("burst: jobs/s, device busy, gap p50 ms", lambda row: _burst(row.get("burst"))),
    ("warm: cold / warmed / backlog p50 ms (backlog vs cold); preview CPU share", lambda row: _warm(row.get("warm"))),
]


RAN_COLUMN: Column = ("ran model", lambda row: row["ran_model"])


def _results_table(rows: list[dict[str, Any]]) -> str:
    columns = list(RESULT_COLUMNS)
    if any(row["ran_model"] != row["model"] for row in rows):  # a preset handed over to another model
        columns.insert(3, RAN_COLUMN)
    names = 4 if columns[3] is RAN_COLUMN else 3
    lines = [f"<tr>{_cells([header for header, _ in columns], header=True, names=names)}</tr>"]
    lines += [f"<tr>{_cells([show(row) for _, show in columns], names=names)}</tr>" for row in rows]
    return f'<div class="scroll"><table>{"".join(lines)}</table></div>'


def _stage_table(rows: list[dict[str, Any]]) -> str:
    present = [stage for stage in STAGES if any(row["stages"].get(stage) is not None for row in rows)]
    lines = [f"<tr>{_cells(['model', 'preset', 'setting', *present, 'p50 end to end'], header=True, names=3)}</tr>"]
    for row in rows:
        cells = [row["model"], row["preset"], row["setting"], *(_number(row["stages"].get(s)) for s in present)]
        lines.append(f"<tr>{_cells([*cells, _number(row['p50_ms'])], names=3)}</tr>")
    return f'<div class="scroll"><table>{"".join(lines)}</table></div>'


def _cards(rows: list[dict[str, Any]], out: Path) -> str:
    cards = []
    for row in rows:
        media = []
        if row.get("poster"):
            uri = data_uri(out / row["poster"], "image/jpeg")
            media.append(f'<img src="{uri}" alt="poster of {escape(row["model"])} {escape(row["preset"])}">')
        if row.get("video"):
            uri = data_uri(out / row["video"], "video/mp4")
            media.append(f'<video controls loop muted playsinline preload="metadata" src="{uri}"></video>')
        caption = (
            f"{row['model']} / {row['preset']} / {row['setting']}: {row['width']}x{row['height']}, "
            f"{row['frames']} frames at {row['fps']} fps, {row['steps']} steps"
        )
        cards.append(
            f'<figure><div class="media">{"".join(media)}</div><figcaption>{escape(caption)}</figcaption></figure>'
        )
    return f'<div class="cards">{"".join(cards)}</div>'


def _environment_table(environment: dict[str, Any]) -> str:
    lines = []
    for key, value in environment.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"<tr><td>{escape(key)}</td><td>{escape(str(shown))}</td></tr>")
    return f'<table class="env">{"".join(lines)}</table>'


def render_html(results: dict[str, Any], out: Path, plot: Path) -> str:
    environment, rows = results["environment"], results["rows"]
    meta = " | ".join(
        str(part)
        for part in (
            environment.get("device_name"),
            f"through {environment.get('through')}",
            environment.get("date"),
            f"commit {environment.get('git_commit') or 'unknown'}",
        )
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>npc-worker bench: {escape(str(environment.get("date")))}</title>
<style>{CSS}</style>
</head>
<body>
<h1>npc-worker bench</h1>
<p class="meta">{escape(meta)}</p>
<p class="meta">{escape(str(environment.get("command", "")))}</p>
<h2>Latency per stage</h2>
<img class="plot" src="{data_uri(plot, "image/png")}" alt="stacked p50 latency per stage for each row">
<h2>Results</h2>
{_results_table(rows)}
<p class="note">End to end: from the job's validation to the stored MP4 (in-process), or from submit to result (queue).
s / step: median denoising step, the first step of each run left out. PSNR dB: the frames against the catalog row of
the same model and preset on the same seeds ("identical": bit for bit). FLOP / step: the transformer formula of
docs/benchmarks.md, x2 when classifier-free guidance runs an unconditional pass.</p>
<h2>Stages (p50 ms)</h2>
{_stage_table(rows)}
<p class="note">Stages partition a run's end-to-end time; each column is the median over the measured runs.</p>
<h2>Outputs (one measured run per row)</h2>
{_cards(rows, out)}
<h2>Environment</h2>
{_environment_table(environment)}
</body>
</html>
"""


def write_html(results: dict[str, Any], out: Path, plot: Path, path: Path) -> None:
    path.write_text(render_html(results, out, plot), encoding="utf-8")
