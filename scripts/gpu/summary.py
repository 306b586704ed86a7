"""summary.json and summary.md of a GPU check, rewritten after every stage: the plan (each stage's cap) beside each
stage's outcome and seconds, the smoke checks and the probe's findings, the GPU tests' counts, every bench row with
what it measured and against which reference (the published figures for Wan 2.1 I2V 14B, a target, or the
row it is compared with), the cost of LoRA changes with compile on, the speed targets (met, missed or not measured),
and rows ready for docs/benchmarks.md.

    python3 scripts/gpu/summary.py --mode gpu --plan plan.tsv --budget 540 --stages stages.tsv --probe probe.json \
        --smoke smoke.json --tests-xml pytest-gpu.xml --lora-swap lora-swap.json --bench bench-wan14=DIR ... \
        --note TEXT ... --out OUTDIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

STAGE_FIELDS = ("name", "status", "exit_code", "seconds", "limit_s")
REALTIME_MODELS = ("wan22-ti2v-5b", "ltx-video-2b")
LORA_SWITCH_TARGET_MS = 50.0
# Wan 2.1 I2V 14B at 480p (832x480, 81 frames) with CFG on one H100, s/step (docs/benchmarks.md, "GPU check").
PUBLISHED_WAN14 = {"LightX2V": 5.18, "sglang": 6.13, "diffusers": 9.77}
WAN14_TARGET_S_PER_STEP = 4.5
QUALITY_TARGET_S = 12.0
REALTIME_TARGET_S = 1.0


def read_plan(path: Path | None) -> dict[str, dict[str, Any]]:
    """plan.tsv: NAME CAP WHAT BASIS, tab-separated, one stage a line (scripts/gpu/plan.sh's stages)."""
    if path is None or not path.is_file():
        return {}
    plan = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, cap, what, basis = line.split("\t")
        plan[name] = {"cap_s": int(cap), "what": what, "basis": basis}
    return plan


def read_stages(path: Path) -> list[dict[str, Any]]:
    """stages.tsv: NAME STATUS EXIT SECONDS LIMIT, tab-separated, one stage a line (scripts/gpu-check.sh)."""
    stages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        values = line.split("\t")
        if len(values) != len(STAGE_FIELDS):
            raise ValueError(f"{path}: {line!r} does not have the {len(STAGE_FIELDS)} fields {STAGE_FIELDS}")
        stage: dict[str, Any] = dict(zip(STAGE_FIELDS, values, strict=True))
        for key in ("exit_code", "seconds", "limit_s"):
            stage[key] = int(stage[key]) if stage[key] else None
        stages.append(stage)
    return stages


def read_tests(path: Path) -> dict[str, Any] | None:
    """Counts from pytest's JUnit XML; None when the test stage wrote none."""
    if not path.is_file():
        return None
    root = ElementTree.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return None
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    failed = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return {
        **counts,
        "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"],
        **({"failed_tests": failed} if failed else {}),
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    return round(value / base, 3) if value and base else None


def bench_rows(name: str, folder: Path) -> dict[str, Any]:
    """The rows of one bench run, with each non-catalog row's p50 and s/step over the catalog row of its
    (model, preset)."""
    path = folder / "results.json"
    if not path.is_file():
        return {"results": None, "rows": []}
    results = json.loads(path.read_text(encoding="utf-8"))
    catalog = {(row["model"], row["preset"]): row for row in results["rows"] if row["setting"] == "catalog"}
    rows = []
    for row in results["rows"]:
        base = catalog.get((row["model"], row["preset"])) if row["setting"] != "catalog" else None
        peak = row.get("peak_device_bytes")
        rows.append(
            {
                "bench": name,
                **{key: row.get(key) for key in ("model", "preset", "setting", "width", "height", "frames", "steps")},
                **{key: row.get(key) for key in ("cfg", "cfg_passes", "runs", "warmup", "p50_ms", "s_per_step")},
                "peak_device_gib": round(peak / 2**30, 2) if peak is not None else None,
                "achieved_tflops": row.get("achieved_tflops"),
                "peak_fraction": row.get("peak_fraction"),
                "flops_per_step": row.get("flops_per_step"),
                "p50_vs_catalog": _ratio(row.get("p50_ms"), base["p50_ms"]) if base else None,
                "s_per_step_vs_catalog": _ratio(row.get("s_per_step"), base.get("s_per_step")) if base else None,
                "psnr_db": row.get("psnr_db"),
                "measured": measured(row),
                "reference": reference(name, row, base),
            }
        )
    environment = results.get("environment", {})
    return {
        "results": str(path),
        "device_name": environment.get("device_name"),
        "date": environment.get("date"),
        "command": environment.get("command"),
        "rows": rows,
    }


def measured(row: dict[str, Any]) -> str:
    """What a row's figures are, in words."""
    single = row.get("warmup") == 0 and row.get("runs") == 1
    cold = "; one cold run: it carries the first call's costs" if single else ""
    text = (
        f"{row.get('through')}: end to end p50 of {row.get('runs')} run(s) after {row.get('warmup')} warm-up{cold}; "
        f"s/step: median step, each run's first left out; {row.get('width')}x{row.get('height')}, "
        f"{row.get('frames')} frames, {row.get('steps')} steps, cfg {row.get('cfg')} "
        f"({row.get('cfg_passes') or '?'} denoiser pass(es) a step); synthetic random weights"
    )
    burst = row.get("burst")
    if burst:
        text += (
            f"; then {burst['jobs']} jobs at once: {burst['jobs_per_s']:.2f} jobs/s, device busy "
            f"{burst['busy_fraction'] or 0:.2f}, batches {burst['batch_sizes']}"
        )
    return text


def reference(bench: str, row: dict[str, Any], base: dict[str, Any] | None) -> str:
    """What a row is measured against."""
    step = row.get("s_per_step")
    if bench == "bench-wan14" and row.get("preset") == "balanced":
        published = ", ".join(f"{name} {value}" for name, value in PUBLISHED_WAN14.items())
        versus = (
            "; this row: " + ", ".join(f"{step / value:.2f}x {name}" for name, value in PUBLISHED_WAN14.items())
            if step
            else ""
        )
        return (
            f"published s/step with CFG, Wan 2.1 I2V 14B 480p on one H100 (docs/benchmarks.md): {published}; "
            f"target <= {WAN14_TARGET_S_PER_STEP}{versus}"
        )
    if bench == "bench-wan14" and row.get("preset") == "quality":
        return f"target: p50 <= {QUALITY_TARGET_S:g} s (distilled: 4 steps, cfg 1)"
    if bench == "bench-realtime":
        return f"target: p50 <= {REALTIME_TARGET_S:g} s warm (distilled: 4 steps, cfg 1)"
    if bench == "bench-burst":
        burst = row.get("burst")
        if burst and row.get("p50_ms"):
            alone = 1000 / row["p50_ms"]
            return (
                f"the same jobs one at a time (this row's runs: {alone:.2f} jobs/s); the burst with batching on: "
                f"{burst['jobs_per_s'] / alone:.2f}x that"
            )
        return "the same jobs one at a time (this row's runs)"
    if bench == "bench-group" and base is not None:
        speedup = f": {base['p50_ms'] / row['p50_ms']:.2f}x as fast" if row.get("p50_ms") and base.get("p50_ms") else ""
        return (
            f"the same jobs on one device (the catalog row){speedup}; the model of the denoiser's speed-up: "
            "docs/benchmarks.md 'Worker groups'"
        )
    if row.get("setting") == "catalog":
        return "the exact configuration (the catalog as written): the reference of the other rows of its bench"
    if base is not None:
        return "the catalog row of the same bench, model and preset: p50 and s/step ratios, psnr_db of its frames"
    return "none in this run (no catalog row to compare with)"


def _row(bench: dict[str, Any], name: str, model: str, preset: str, setting: str = "catalog") -> dict[str, Any] | None:
    run = bench.get(name) or {"rows": []}
    return next(
        (row for row in run["rows"] if (row["model"], row["preset"], row["setting"]) == (model, preset, setting)),
        None,
    )


def _target(name: str, goal: str, measured: str | None, met: bool | None, source: str) -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": measured or "not measured", "met": met, "source": source}


def targets(bench: dict[str, Any], lora_swap: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The speed targets of issue 10, each met (True), missed (False) or not measured (None) by this check."""
    found = []
    row = _row(bench, "bench-wan14", "wan21-i2v-14b-480p", "balanced")
    step = row.get("s_per_step") if row else None
    found.append(
        _target(
            "Wan 2.1 I2V 14B, 480p, 81 frames, CFG",
            "s/step <= 4.5",
            f"{step:.2f} s/step" if step is not None else None,
            step <= 4.5 if step is not None else None,
            "bench-wan14 balanced",
        )
    )
    realtime = {model: _row(bench, "bench-realtime", model, "realtime") for model in REALTIME_MODELS}
    p50s = {model: row["p50_ms"] / 1000 for model, row in realtime.items() if row and row.get("p50_ms") is not None}
    found.append(
        _target(
            "realtime, distilled 4 steps, warm (Wan 2.2 TI2V 5B or LTX-Video 2B)",
            "p50 <= 1.0 s",
            ", ".join(f"{model} {seconds:.2f} s" for model, seconds in p50s.items()) or None,
            any(seconds <= 1.0 for seconds in p50s.values()) if p50s else None,
            "bench-realtime",
        )
    )
    row = _row(bench, "bench-wan14", "wan21-i2v-14b-480p", "quality")
    p50 = row["p50_ms"] / 1000 if row and row.get("p50_ms") is not None else None
    found.append(
        _target(
            "quality, Wan 14B 768x768, 3 s at 30 fps, distilled",
            "p50 <= 12 s",
            f"{p50:.2f} s (one cold run)" if p50 is not None else None,
            p50 <= 12 if p50 is not None else None,
            "bench-wan14 quality",
        )
    )
    if lora_swap is None:
        found.append(_target("LoRA change with compile on", "< 50 ms, no recompilation", None, None, "lora-swap"))
    else:
        # A change between LoRAs in slots is the switch (as between loaded named adapters); a LoRA in no slot is
        # read from its file first, which costs what reading that many bytes costs, shown beside it.
        in_slot = [item["switch_ms"] for item in lora_swap["switches"] if item["kind"] == "in slot"]
        from_file = [item["switch_ms"] for item in lora_swap["switches"] if item["kind"].startswith("hotswap")]
        recompiles = lora_swap["recompiles"]
        found.append(
            _target(
                "LoRA change with compile on",
                "< 50 ms, no recompilation",
                f"between LoRAs in slots at most {max(in_slot):.1f} ms; into a slot from a "
                f"{lora_swap['lora_bytes'] / 2**20:.0f} MiB file at most {max(from_file):.1f} ms; "
                f"{recompiles} recompiled frame(s)",
                max(in_slot) < LORA_SWITCH_TARGET_MS and recompiles == 0,
                "lora-swap",
            )
        )
    return found


def _psnr(value: Any) -> str:
    if value is None:
        return "-"
    return "identical" if value == "inf" else f"{value:.2f}"


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# GPU check ({summary['mode']}), {summary['date']}",
        "",
        f"Device: {summary['device_name'] or '-'}; overall: **{summary['status']}**; "
        f"{summary['seconds_used']} s of stages inside the {summary['budget_s'] or '-'} s budget.",
        "",
        "| stage | cap | status | exit | seconds | limit |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    done = {stage["name"]: stage for stage in summary["stages"]}
    for name, planned in summary["plan"].items():
        stage = done.get(name, {"status": "not run yet", "exit_code": None, "seconds": None, "limit_s": None})
        lines.append(
            f"| {name} | {planned['cap_s']} | {stage['status']} | {_cell(stage['exit_code'])} | "
            f"{_cell(stage['seconds'])} | {_cell(stage['limit_s'])} |"
        )
    lines += [
        f"| {stage['name']} | - | {stage['status']} | {_cell(stage['exit_code'])} | {_cell(stage['seconds'])} "
        f"| {_cell(stage['limit_s'])} |"
        for stage in summary["stages"]
        if stage["name"] not in summary["plan"]
    ]
    smoke = summary["smoke"]
    if smoke:
        lines += ["", "Smoke checks:"]
        lines += [
            f"- {name}: {'ok' if check['ok'] else '**failed**'} in {check['seconds']} s: {check['detail']}"
            for name, check in smoke.get("checks", {}).items()
        ]
    tests = summary["tests"]
    lines += [
        "",
        "GPU tests: "
        + (
            "no report"
            if tests is None
            else f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, {tests['skipped']} skipped"
        ),
    ]
    probe = summary["probe"]
    if probe:
        speed = probe.get("speed", {})
        lines += [
            "",
            f"Probe: unmet requirements: {len(probe.get('unmet_requirements', []))}; "
            f"attention packages: {json.dumps(speed.get('attention_backends'))}; "
            f"attention backends with requirements met: {json.dumps(speed.get('usable_attention_backends'))}, "
            f"that ran one call: {json.dumps(speed.get('working_attention_backends'))}; "
            f"redis-server: {(probe.get('redis_server') or {}).get('detail', '-')}; "
            f"torchao: {json.dumps(speed.get('torchao', speed.get('status')))}",
        ]
        lines += [f"- unmet: {gap}" for gap in probe.get("unmet_requirements", [])]
    lines += [f"- note: {note}" for note in summary["notes"]]
    qualifier = (
        " (dry run: narrow models on the CPU, the figures say nothing about a GPU)" if summary["mode"] != "gpu" else ""
    )
    lines += [
        "",
        f"Targets{qualifier}:",
        "",
        "| target | goal | measured | met | from |",
        "| --- | --- | --- | --- | --- |",
    ]
    verdicts = {True: "yes", False: "**no**", None: "-"}
    lines += [
        f"| {item['target']} | {item['goal']} | {item['measured']} | {verdicts[item['met']]} | {item['source']} |"
        for item in summary["targets"]
    ]
    swap = summary["lora_swap"]
    if swap is not None:
        lines += [
            "",
            f"LoRA changes ({swap['model']}, compile backend {swap['backend']}, {swap['slots']} slots of rank "
            f"{swap['rank']}, LoRA files {swap['lora_bytes'] / 2**20:.1f} MiB): prime {swap['prime_ms']:.1f} ms, "
            f"first call {swap['first_call_s']:.2f} s (compiles), then {swap['steady_call_s']:.2f} s per call",
            "",
            "| to | switch | ms | next call s | recompiled frames |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {item['to']} | {item['kind']} | {item['switch_ms']:.2f} | {item['call_s']:.3f} | "
            f"{item['compiled_frames']} |"
            for item in swap["switches"]
        ]
    lines += [
        "",
        "| bench | model | preset | setting | size | frames | steps | cfg | p50 ms | s/step | peak GiB | TFLOP/s "
        "| % peak | p50 vs catalog | s/step vs catalog | PSNR dB |",
        "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in summary["bench"].values():
        for row in run["rows"]:
            fraction = row["peak_fraction"]
            lines.append(
                f"| {row['bench']} | {row['model']} | {row['preset']} | {row['setting']} | "
                f"{row['width']}x{row['height']} | {row['frames']} | {row['steps']} | {_cell(row['cfg'])} | "
                f"{_cell(row['p50_ms'])} | {_cell(row['s_per_step'], 3)} | {_cell(row['peak_device_gib'], 2)} | "
                f"{_cell(row['achieved_tflops'])} | {_cell(None if fraction is None else fraction * 100)} | "
                f"{_cell(row['p50_vs_catalog'], 2)} | {_cell(row['s_per_step_vs_catalog'], 2)} | "
                f"{_psnr(row['psnr_db'])} |"
            )
    lines += ["", "What each row measured, and against what:", ""]
    for run in summary["bench"].values():
        for row in run["rows"]:
            lines.append(
                f"- {row['bench']} {row['model']} / {row['preset']} / {row['setting']}: {row['measured']}. "
                f"Reference: {row['reference']}."
            )
    lines += [
        "",
        "Rows for docs/benchmarks.md, 'Figures on GPU':",
        "",
        "| device | date | command | row | p50 | s/step | peak memory |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for name, run in summary["bench"].items():
        day = (run.get("date") or summary["date"])[:10]
        for row in run["rows"]:
            lines.append(
                f"| {run.get('device_name') or '-'} | {day} | `scripts/gpu-check.sh` ({name}) | "
                f"{row['model']} / {row['preset']} / {row['setting']}, {row['width']}x{row['height']}x{row['frames']}, "
                f"{row['steps']} steps | {_cell(None if row['p50_ms'] is None else row['p50_ms'] / 1000, 2)} s | "
                f"{_cell(row['s_per_step'], 3)} | {_cell(row['peak_device_gib'], 1)} GiB |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", required=True, choices=("gpu", "dry-run"))
    parser.add_argument("--plan", type=Path, help="plan.tsv: the stages' caps (scripts/gpu-check.sh writes it)")
    parser.add_argument("--budget", type=int)
    parser.add_argument("--smoke", type=Path, help="scripts/gpu/smoke.py's JSON (may be missing)")
    parser.add_argument("--stages", type=Path, required=True)
    parser.add_argument("--probe", type=Path, required=True)
    parser.add_argument("--tests-xml", type=Path, required=True)
    parser.add_argument(
        "--lora-swap", type=Path, required=True, help="scripts/gpu/lora_swap.py's JSON (may be missing)"
    )
    parser.add_argument("--bench", action="append", default=[], help="NAME=RESULTS_DIR, repeatable")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    stages = read_stages(args.stages)
    probe = json.loads(args.probe.read_text(encoding="utf-8")) if args.probe.is_file() else None
    bench = {}
    for item in args.bench:
        name, _, folder = item.partition("=")
        bench[name] = bench_rows(name, Path(folder))
    lora_swap = json.loads(args.lora_swap.read_text(encoding="utf-8")) if args.lora_swap.is_file() else None
    failed = [stage["name"] for stage in stages if stage["status"] not in ("ok", "skipped")]
    device_names = [run["device_name"] for run in bench.values() if run.get("device_name")]
    plan = read_plan(args.plan)
    pending = [name for name in plan if name not in {stage["name"] for stage in stages}]
    status = f"failed: {', '.join(failed)}" if failed else "ok"
    if pending:
        status += f" so far ({len(pending)} stage(s) to run: {', '.join(pending)})"
    smoke = json.loads(args.smoke.read_text(encoding="utf-8")) if args.smoke and args.smoke.is_file() else None
    summary = {
        "mode": args.mode,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": status,
        "budget_s": args.budget,
        "seconds_used": sum(stage["seconds"] or 0 for stage in stages),
        "plan": plan,
        "smoke": smoke,
        "device_name": (probe or {}).get("facts", {}).get("device_name") or (device_names[0] if device_names else None),
        "stages": stages,
        "probe": probe,
        "tests": read_tests(args.tests_xml),
        "bench": bench,
        "lora_swap": lora_swap,
        "targets": targets(bench, lora_swap),
        "notes": args.note,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(summary)
    replace_file(args.out / "summary.json", json.dumps(summary, indent=2) + "\n")
    replace_file(args.out / "summary.md", markdown)
    print(markdown)
    return 0


def replace_file(path: Path, text: str) -> None:
    """Written beside, then renamed: the check may be killed at any moment, and a half summary is no summary."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
