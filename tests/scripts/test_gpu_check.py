"""scripts/gpu-check.sh --dry-run: the GPU check's whole sequence on this CPU with narrow models, so that a typo,
a missing file or a bench flag that does not parse is found here and never costs a GPU minute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu-check.sh"
BUNDLE = REPO / "scripts" / "gpu" / "bundle.py"
ARCHIVES = ("bench-wan14", "bench-speed", "bench-realtime", "bench-attention")
EXPECTED_FILES = {"gpu-check.log", "summary.md", "summary.json", "pytest-gpu.xml"} | {f"{a}.tar.gz" for a in ARCHIVES}
STAGES = [
    "wheels",
    "probe",
    "tests",
    "bench-wan14",
    "bench-speed",
    "lora-swap",
    "bench-realtime",
    "bench-attention",
    *(f"bundle-{archive}" for archive in ARCHIVES),
]
PRESETS = ["realtime", "fast", "balanced", "quality"]
REALTIME_MODELS = ("wan22-ti2v-5b", "ltx-video-2b")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("gpu-check") / "out"
    done = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", str(out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=285,
        env=_env(),
    )
    return out, done


@pytest.fixture(scope="module")
def summary(dry_run: tuple[Path, subprocess.CompletedProcess[str]]) -> dict[str, Any]:
    out, done = dry_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    loaded: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return loaded


def _results(out: Path, archive: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    with tarfile.open(out / f"{archive}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / archive
    return json.loads((folder / "results.json").read_text(encoding="utf-8")), folder


def test_outdir_holds_what_the_device_tool_can_bring_back(summary: dict[str, Any], dry_run: Any) -> None:
    out, _ = dry_run
    entries = list(out.iterdir())
    assert {entry.name for entry in entries} == EXPECTED_FILES
    assert len(entries) <= 8
    assert all(entry.is_file() and entry.stat().st_size < 16 * 2**20 for entry in entries)


def test_every_stage_ran_in_order_and_passed(summary: dict[str, Any]) -> None:
    assert [stage["name"] for stage in summary["stages"]] == STAGES
    statuses = {stage["name"]: stage["status"] for stage in summary["stages"]}
    assert statuses.pop("wheels") == "skipped"  # the dry run uses .venv
    assert set(statuses.values()) == {"ok"}, statuses
    assert summary["status"] == "ok"
    assert summary["mode"] == "dry-run"
    assert all(value == "ok" for value in summary["probe"]["imports"].values())
    assert summary["probe"]["ffmpeg"]["ok"]
    assert summary["probe"]["speed"]["torchao"]["status"] == "absent"  # no speed folder in the dry run
    assert summary["probe"]["speed"]["attention_backends"]["sage_attn"] is False


def test_the_gpu_tests_were_collected_and_skip_without_cuda(summary: dict[str, Any]) -> None:
    tests = summary["tests"]
    assert tests["tests"] >= 4
    assert tests["skipped"] == tests["tests"]


def test_wan14_rows_are_stepped_with_guidance_and_distilled_at_quality(
    summary: dict[str, Any], dry_run: Any, tmp_path: Path
) -> None:
    results, folder = _results(dry_run[0], "bench-wan14", tmp_path)
    rows = {row["preset"]: row for row in results["rows"]}
    assert set(rows) == {"balanced", "quality"} and {row["setting"] for row in rows.values()} == {"catalog"}
    balanced, quality = rows["balanced"], rows["quality"]
    assert (balanced["model"], balanced["steps"], balanced["frames"], balanced["cfg_passes"]) == (
        "wan21-i2v-14b-480p",
        3,
        9,
        2,
    )
    assert balanced["s_per_step"] > 0
    assert balanced["flops_per_step"] > 0  # the synthetic transformer's FLOPs are estimated
    assert (quality["steps"], quality["cfg"], quality["cfg_passes"]) == (4, 1.0, 1)  # the catalog's distilled preset
    catalog_file = folder / "catalogs" / "wan21-i2v-14b-480p--catalog.toml"
    text = catalog_file.read_text(encoding="utf-8")
    assert 'synthetic = "wan21-i2v-14b-480p"' in text
    assert 'synthetic_scale = "narrow"' in text
    assert 'dtype = "bfloat16"' in text
    assert {"results.csv", "plot.png", "report.html"} <= {path.name for path in folder.iterdir()}


def test_speed_rows_report_their_deviation_from_the_catalog_row(dry_run: Any, tmp_path: Path) -> None:
    speed, _ = _results(dry_run[0], "bench-speed", tmp_path / "s")
    rows = {row["setting"]: row for row in speed["rows"]}
    assert list(rows) == ["catalog", "fbc", "compile", "fp8-compile"]
    tables = speed["environment"]["speed_tables"]
    assert tables["wan22-ti2v-5b/compile"]["compile"] is True
    assert tables["wan22-ti2v-5b/fp8-compile"]["fp8_matmul"] is True
    assert rows["catalog"]["psnr_db"] is None
    assert rows["fbc"]["psnr_db"] is not None
    # compile and fp8 are CUDA settings: on the CPU they are skipped, so the output is the catalog's, bit for bit
    assert rows["compile"]["psnr_db"] == rows["fp8-compile"]["psnr_db"] == "inf"


def test_the_lora_swap_stage_times_each_change_and_counts_recompiles(summary: dict[str, Any]) -> None:
    swap = summary["lora_swap"]
    assert (swap["model"], swap["backend"], swap["slots"]) == ("wan22-ti2v-5b", "eager", 2)
    assert swap["compiled_frames_first_call"] >= 1 and swap["recompiles"] == 0
    assert [item["kind"] for item in swap["switches"]] == [
        "hotswap from file",
        "in slot",
        "in slot",
        "hotswap, evicting",
        "none",
    ]
    assert swap["max_switch_ms"] == max(item["switch_ms"] for item in swap["switches"]) > 0


def test_realtime_runs_warm_and_distilled_and_attention_has_a_row_per_backend(dry_run: Any, tmp_path: Path) -> None:
    realtime, _ = _results(dry_run[0], "bench-realtime", tmp_path / "r")
    assert [(row["model"], row["preset"]) for row in realtime["rows"]] == [(m, "realtime") for m in REALTIME_MODELS]
    for row in realtime["rows"]:
        assert (row["warmup"], row["runs"], row["steps"], row["cfg_passes"]) == (1, 3, 4, 1)
    attention, _ = _results(dry_run[0], "bench-attention", tmp_path / "a")
    settings = [row["setting"] for row in attention["rows"]]
    assert settings[0] == "catalog" and len(settings) >= 2
    assert all(name.startswith("attn-_native_") for name in settings[1:])  # what torch itself brings
    assert all(row["video"] and row["poster"] for row in attention["rows"])


def test_summary_has_the_targets_and_a_row_per_bench_row_for_the_docs(summary: dict[str, Any], dry_run: Any) -> None:
    markdown = (dry_run[0] / "summary.md").read_text(encoding="utf-8")
    rows = sum(len(run["rows"]) for run in summary["bench"].values())
    attention = len(summary["bench"]["bench-attention"]["rows"])
    assert rows == 2 + 4 + 2 + attention
    assert markdown.count("`scripts/gpu-check.sh` (bench-") == rows
    assert "no sage attention row" in markdown
    assert [target["source"] for target in summary["targets"]] == [
        "bench-wan14 balanced",
        "bench-realtime",
        "bench-wan14 quality",
        "lora-swap",
    ]
    assert all(target["measured"] != "not measured" for target in summary["targets"])
    assert "Targets (dry run: narrow models on the CPU" in markdown
    log = (dry_run[0] / "gpu-check.log").read_text(encoding="utf-8")
    assert "=== bench-wan14: ok" in log


def test_bundle_leaves_videos_out_to_stay_under_the_limit(dry_run: Any, tmp_path: Path) -> None:
    results, folder = _results(dry_run[0], "bench-speed", tmp_path / "in")
    full = (dry_run[0] / "bench-speed.tar.gz").stat().st_size
    archive = tmp_path / "bench-speed.tar.gz"
    largest = max((folder / row["video"]).stat().st_size for row in results["rows"])
    limit_mib = (full - largest) / 2**20  # a video is in the archive twice (its file, the report): one must go
    done = subprocess.run(
        [sys.executable, str(BUNDLE), str(folder), str(archive), "--limit-mib", f"{limit_mib:.4f}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": f"{REPO}:{REPO / 'clients/python'}"},
    )
    assert done.returncode == 0, done.stderr
    assert "left out" in done.stdout
    assert archive.stat().st_size <= limit_mib * 2**20
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "out", filter="data")
    inside = tmp_path / "out" / "bench-speed"
    smaller = json.loads((inside / "results.json").read_text(encoding="utf-8"))
    dropped = [row for row in smaller["rows"] if row["video"] is None]
    assert 0 < len(dropped) <= len(results["rows"])
    kept = [row for row in smaller["rows"] if row["video"]]
    assert (inside / "report.html").read_text(encoding="utf-8").count("data:video/mp4") == len(kept)
    assert all(row["poster"] and (inside / row["poster"]).is_file() for row in smaller["rows"])
    assert all((inside / row["video"]).is_file() for row in smaller["rows"] if row["video"])
    assert "Left out" in (inside / "BUNDLE.txt").read_text(encoding="utf-8")
    assert (folder / "media").is_dir()  # the source folder is never changed


def test_bundle_refuses_when_even_no_video_does_not_fit(dry_run: Any, tmp_path: Path) -> None:
    _, folder = _results(dry_run[0], "bench-wan14", tmp_path / "in")
    done = subprocess.run(
        [sys.executable, str(BUNDLE), str(folder), str(tmp_path / "x.tar.gz"), "--limit-mib", "0.001"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": f"{REPO}:{REPO / 'clients/python'}"},
    )
    assert done.returncode == 1
    assert "without any video" in done.stderr
    assert not (tmp_path / "x.tar.gz").exists()


@pytest.mark.parametrize("args", [[], ["--dry-run"], ["--dry-run", "a", "b"], ["--gpu", "out"]])
def test_usage_errors_exit_2_before_anything_runs(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], check=False, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "usage: scripts/gpu-check.sh [--dry-run] OUTDIR" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _gpu_plan(tmp_path: Path) -> dict[str, str]:
    """scripts/gpu/plan.sh's GPU plan, read through bash, and the catalog it writes (into tmp_path)."""
    names = ("MODE", "DEVICE", "SCALE", "BUDGET_S", "WAN14_OVERRIDE", "SPEED_OVERRIDE", "REALTIME_OVERRIDE")
    names += ("LORA_SWAP_OVERRIDE", "LORA_SWAP_BACKEND", "LORA_SWAP_MODEL")
    caps = ("CAP_PROBE", "CAP_TESTS", "CAP_WAN14", "CAP_SPEED", "CAP_LORA_SWAP", "CAP_REALTIME", "CAP_ATTENTION")
    script = (
        f'source "{REPO}/scripts/gpu/plan.sh" && plan_for gpu && write_catalog "{tmp_path}/catalog.toml" && '
        + " && ".join(f'printf "%s=%s\\n" {name} "${name}"' for name in (*names, *caps))
    )
    done = subprocess.run(
        ["bash", "-c", script], check=True, capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"}
    )
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_the_gpu_plan_resolves_to_the_planned_shapes(tmp_path: Path) -> None:
    """What only the GPU run uses (its overrides, the full-scale catalog) is checked here, not on the GPU."""
    from bench.jobs import base_image_uri, job_params
    from bench.options import parse_overrides
    from models.catalog import load_catalog
    from models.resolution import resolve
    from npc_video_client.contract import NpcResponseParams

    plan = _gpu_plan(tmp_path)
    assert (plan["MODE"], plan["DEVICE"], plan["SCALE"], plan["LORA_SWAP_BACKEND"]) == (
        "gpu",
        "cuda",
        "full",
        "inductor",
    )
    assert int(plan["BUDGET_S"]) + 10 + 30 < 8 * 60  # kill grace and the archives on top: under 8 minutes
    catalog = load_catalog(tmp_path / "catalog.toml")
    assert {name: (entry.synthetic, entry.synthetic_scale, entry.dtype) for name, entry in catalog.models.items()} == {
        name: (name, None, "bfloat16") for name in ("wan21-i2v-14b-480p", "wan22-ti2v-5b", "ltx-video-2b")
    }

    def resolved(model: str, preset: str, override: str) -> Any:
        image = base_image_uri(None)
        overrides = parse_overrides([override] if override else [], job_params(image, preset, {}))
        params = NpcResponseParams.model_validate({**job_params(image, preset, overrides), "seed": 0})
        defaults = catalog.defaults.model_copy(update={"model": model})
        return resolve(params, catalog.model_copy(update={"defaults": defaults}), (512, 512))

    balanced = resolved("wan21-i2v-14b-480p", "balanced", plan["WAN14_OVERRIDE"])
    assert (balanced.width, balanced.height, balanced.generated_frames, balanced.steps, balanced.cfg) == (
        832,
        480,
        81,
        3,
        5.0,
    )
    quality = resolved("wan21-i2v-14b-480p", "quality", plan["WAN14_OVERRIDE"])
    shape = (quality.width, quality.height, quality.generated_frames, quality.fps, quality.steps, quality.cfg)
    assert shape == (768, 768, 49, 30, 4, 1.0)  # 3 s (49 frames at 16 fps, a 30 fps file), distilled
    for model in ("wan22-ti2v-5b", "ltx-video-2b"):
        realtime = resolved(model, "realtime", plan["REALTIME_OVERRIDE"])
        assert (realtime.steps, realtime.cfg) == (4, 1.0)
    speed = resolved("wan22-ti2v-5b", "fast", plan["SPEED_OVERRIDE"])
    assert speed.steps >= 3 and speed.cfg > 1  # s/step needs 2 steps after the 1st; fbc sees both passes
    swap = resolved(plan["LORA_SWAP_MODEL"], "fast", plan["LORA_SWAP_OVERRIDE"])
    assert (swap.width, swap.height, swap.steps) == (512, 512, 2)
