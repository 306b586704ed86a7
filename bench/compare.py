"""`npc-worker bench --compare A B`: B/A ratios per matching row (model, preset, setting) of two bench runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.plot import row_label, write_compare_plot
from bench.records import STAGES
from bench.report import load_results

RowKey = tuple[str, str, str]


def _key(row: dict[str, Any]) -> RowKey:
    return (row["model"], row["preset"], row["setting"])


def ratio(new: float | None, old: float | None) -> float | None:
    """new / old; None when either is missing or the old value is not positive (no meaningful ratio)."""
    if new is None or old is None or old <= 0:
        return None
    return new / old


@dataclass(frozen=True)
class Comparison:
    matches: list[dict[str, Any]]  # label, ratios (p50_ms, s_per_step, each stage)
    only_a: list[str]
    only_b: list[str]
    stages: list[str]  # the stages with a ratio in at least one row


def compare_results(a: dict[str, Any], b: dict[str, Any]) -> Comparison:
    rows_a = {_key(row): row for row in a["rows"]}
    keys_b = {_key(row) for row in b["rows"]}
    matches: list[dict[str, Any]] = []
    for row_b in b["rows"]:
        row_a = rows_a.get(_key(row_b))
        if row_a is None:
            continue
        ratios = {
            "p50_ms": ratio(row_b["p50_ms"], row_a["p50_ms"]),
            "s_per_step": ratio(row_b.get("s_per_step"), row_a.get("s_per_step")),
        }
        for stage in STAGES:
            ratios[stage] = ratio(row_b["stages"].get(stage), row_a["stages"].get(stage))
        matches.append({"label": row_label(row_b), "ratios": ratios})
    stages = [stage for stage in STAGES if any(match["ratios"][stage] is not None for match in matches)]
    return Comparison(
        matches=matches,
        only_a=[row_label(row) for row in a["rows"] if _key(row) not in keys_b],
        only_b=[row_label(row) for row in b["rows"] if _key(row) not in rows_a],
        stages=stages,
    )


def format_table(comparison: Comparison) -> str:
    columns = ["p50_ms", "s_per_step", *comparison.stages]
    headers = ["row", "p50", "s/step", *comparison.stages]
    lines = [[match["label"], *(_shown(match["ratios"][column]) for column in columns)] for match in comparison.matches]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=True)]

    def render(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))]
        )

    text = [render(headers), *(render(line) for line in lines)]
    text += [f"only in A: {label}" for label in comparison.only_a]
    text += [f"only in B: {label}" for label in comparison.only_b]
    return "\n".join(text)


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_compare(path_a: Path, path_b: Path, out: Path | None) -> tuple[str, Path]:
    """The ratio table (B / A) and the path of the compare.png written next to B (or into `out`)."""
    results_a, _ = load_results(path_a)
    results_b, folder_b = load_results(path_b)
    comparison = compare_results(results_a, results_b)
    if not comparison.matches:
        raise ValueError(
            f"no row of {path_b} matches a row of {path_a} by (model, preset, setting); "
            f"A has: {', '.join(comparison.only_a) or 'none'}; B has: {', '.join(comparison.only_b) or 'none'}"
        )
    target = out or folder_b
    target.mkdir(parents=True, exist_ok=True)
    png = target / "compare.png"
    write_compare_plot(comparison.matches, png, str(path_a), str(path_b))
    header = f"B / A per matching row (A: {path_a}, B: {path_b}; below 1: B is faster)"
    return f"{header}\n{format_table(comparison)}", png
