"""PNG charts of bench results (matplotlib's object API with the Agg canvas: no display, no global pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.records import STAGES

DPI = 110


def _figure(rows: int) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 1.6 + 0.5 * max(rows, 1)), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _stage_colors() -> dict[str, Any]:
    from matplotlib import colormaps

    palette = colormaps["tab20"]
    return {stage: palette(index % 20) for index, stage in enumerate(STAGES)}


def row_label(row: dict[str, Any]) -> str:
    return f"{row['model']} / {row['preset']} / {row['setting']}"


def write_stage_plot(rows: list[dict[str, Any]], environment: dict[str, Any], path: Path) -> None:
    """p50 latency per stage as stacked horizontal bars, one bar per row; a tick marks the p50 end to end."""
    figure, axes = _figure(len(rows))
    colors = _stage_colors()
    positions = list(range(len(rows)))
    lefts = [0.0] * len(rows)
    for stage in STAGES:
        values = [row["stages"].get(stage) or 0.0 for row in rows]
        if not any(values):
            continue
        axes.barh(positions, values, left=lefts, color=colors[stage], label=stage, height=0.6)
        lefts = [left + value for left, value in zip(lefts, values, strict=True)]
    axes.scatter([row["p50_ms"] for row in rows], positions, marker="|", s=400, color="black", label="p50 end to end")
    axes.set_yticks(positions, [row_label(row) for row in rows])
    axes.invert_yaxis()
    axes.set_xlabel("milliseconds (p50 of each stage)")
    axes.set_title(f"Latency per stage on {environment.get('device_name', '?')}", fontsize=11)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)


def write_compare_plot(comparisons: list[dict[str, Any]], path: Path, baseline: str, candidate: str) -> None:
    """B/A ratios per matching row: p50 end to end and seconds per step (1.0: no change; < 1: B is faster)."""
    figure, axes = _figure(len(comparisons))
    positions = list(range(len(comparisons)))
    for offset, (key, label, color) in enumerate(
        (("p50_ms", "p50 end to end", "#4c72b0"), ("s_per_step", "s / step", "#dd8452"))
    ):
        values = [item["ratios"].get(key) or 0.0 for item in comparisons]
        axes.barh(
            [position + (offset - 0.5) * 0.38 for position in positions], values, height=0.36, label=label, color=color
        )
    axes.axvline(1.0, color="black", linewidth=1)
    axes.set_yticks(positions, [item["label"] for item in comparisons])
    axes.invert_yaxis()
    axes.set_xlabel(f"ratio B / A   (A: {baseline}, B: {candidate})")
    axes.set_title("B / A per matching row (below 1: B is faster)", fontsize=11)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
