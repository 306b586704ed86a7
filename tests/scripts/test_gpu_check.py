"""scripts/gpu-check.sh --dry-run: the GPU check's whole sequence on this CPU with narrow models, so that a typo,
a missing file or a bench flag that does not parse is found here and never costs a GPU minute; and the GPU plan:
stage caps that fit the budget, most important first, and the shapes each stage will run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu-check.sh"
BUNDLE = REPO / "scripts" / "gpu" / "bundle.py"
ARCHIVES = {  # archive -> the bench folders it holds
    "bench-wan14": ["bench-wan14"],
    "bench-speed": ["bench-speed"],
    "bench-burst": ["bench-burst"],
    "bench-realtime-attention": ["bench-realtime", "bench-attention"],
}
EXPECTED_FILES = {"gpu-check.log", "summary.md", "summary.json", "pytest-gpu.xml"} | {f"{a}.tar.gz" for a in ARCHIVES}
STAGES = [  # most important first: the GPU tests last
    "wheels",
    "smoke",
    "bench-wan14",
    "bench-speed",
    "bench-burst",
    "lora-swap",
    "bench-realtime",
    "bench-attention",
    "tests",
]
BUDGET_LINE = re.compile(r"^  total +(\d+)  of a (\d+) s budget: fits$", re.MULTILINE)
PRESETS = ["realtime", "fast", "balanced", "quality"]
DRY_RUN_TIMEOUT_S = 1000  # the dry run's budget (900 s, scripts/gpu/plan.sh) and a margin
# pytest-timeout counts the module's dry-run fixture in the first test that uses it: that test needs the whole run
pytestmark = pytest.mark.timeout(DRY_RUN_TIMEOUT_S + 60)
REALTIME_MODELS = ("wan22-ti2v-5b", "ltx-video-2b")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The whole dry run, in a session of its own: whatever ends the test (its timeout, an interrupt) ends every
    process the script started too, not the script alone."""
    out = tmp_path_factory.mktemp("gpu-check") / "out"
    command = ["bash", str(SCRIPT), "--dry-run", str(out)]
    script = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True
    )
    try:
        stdout, stderr = script.communicate(timeout=DRY_RUN_TIMEOUT_S)
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(timeout=30)
    return out, subprocess.CompletedProcess(command, script.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def summary(dry_run: tuple[Path, subprocess.CompletedProcess[str]]) -> dict[str, Any]:
    out, done = dry_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    loaded: dict[str, Any] = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return loaded


def _results(out: Path, bench: str, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """The results of one bench folder, from the archive that holds it."""
    [archive] = [name for name, folders in ARCHIVES.items() if bench in folders]
    with tarfile.open(out / f"{archive}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / bench
    return json.loads((folder / "results.json").read_text(encoding="utf-8")), folder


def test_outdir_holds_what_the_device_tool_can_bring_back(summary: dict[str, Any], dry_run: Any) -> None:
    out, _ = dry_run
    entries = list(out.iterdir())
    assert {entry.name for entry in entries} == EXPECTED_FILES  # no folder, no leftover .partial file
    assert len(entries) <= 8
    assert all(entry.is_file() and entry.stat().st_size < 16 * 2**20 for entry in entries)
    assert sum(entry.stat().st_size for entry in entries) < 64 * 2**20


def test_every_stage_ran_in_order_and_passed(summary: dict[str, Any]) -> None:
    assert [stage["name"] for stage in summary["stages"]] == STAGES
    assert list(summary["plan"]) == STAGES
    statuses = {stage["name"]: stage["status"] for stage in summary["stages"]}
    assert statuses.pop("wheels") == "skipped"  # the dry run uses .venv
    assert set(statuses.values()) == {"ok"}, statuses
    assert summary["status"] == "ok"
    assert summary["mode"] == "dry-run"
    assert all(value == "ok" for value in summary["probe"]["imports"].values())
    assert summary["probe"]["ffmpeg"]["ok"] and summary["probe"]["redis_server"]["ok"]
    assert summary["probe"]["left_out"].keys() == {"boto3"}
    speed = summary["probe"]["speed"]
    assert speed["torchao"]["status"] == "absent"  # no speed folder in the dry run
    assert speed["attention_backends"]["sage_attn"] is False
    assert "_native_math" in speed["working_attention_backends"]  # the CPU runs the reference kernel
    assert all(outcome != "ok" for name, outcome in speed["attention_calls"].items() if name == "_native_cudnn")


def test_the_smoke_stage_ran_the_narrow_model_and_a_compiled_block(summary: dict[str, Any]) -> None:
    checks = summary["smoke"]["checks"]
    assert list(checks) == ["probe", "narrow_job", "compiled_block"]
    assert all(check["ok"] for check in checks.values()), checks
    assert "2 steps on cpu" in checks["narrow_job"]["detail"]
    assert "backend eager" in checks["compiled_block"]["detail"]


def test_the_summary_and_the_stage_archive_are_saved_after_every_stage(dry_run: Any) -> None:
    log = (dry_run[0] / "gpu-check.log").read_text(encoding="utf-8")
    saved = re.findall(r"^--- saved after (\S+): (.*)$", log, re.MULTILINE)
    assert [stage for stage, _ in saved] == STAGES
    files = dict(saved)
    assert "summary.json" in files["wheels"]  # from the first stage on
    assert "bench-wan14.tar.gz" in files["bench-wan14"] and "bench-speed.tar.gz" not in files["bench-wan14"]
    assert "bench-realtime-attention.tar.gz" in files["bench-realtime"]


def test_the_gpu_tests_were_collected_and_skip_without_cuda(summary: dict[str, Any]) -> None:
    tests = summary["tests"]
    assert tests["tests"] >= 9
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
    assert list(rows) == ["catalog", "compile", "fp8-compile"]
    tables = speed["environment"]["speed_tables"]
    assert tables["wan22-ti2v-5b/compile"]["compile"] is True
    assert tables["wan22-ti2v-5b/fp8-compile"]["fp8_matmul"] is True
    assert rows["catalog"]["psnr_db"] is None
    # compile and fp8 are CUDA settings: on the CPU they are skipped, so the output is the catalog's, bit for bit
    assert rows["compile"]["psnr_db"] == rows["fp8-compile"]["psnr_db"] == "inf"


def test_the_burst_runs_through_the_queue_with_batching_on(dry_run: Any, tmp_path: Path) -> None:
    results, _ = _results(dry_run[0], "bench-burst", tmp_path / "b")
    [row] = results["rows"]
    assert (row["through"], row["setting"], row["runs"], row["warmup"]) == ("queue", "batch4", 2, 1)
    assert results["environment"]["settings"][0]["worker_settings"] == {"max_batch": 4}
    burst = row["burst"]
    assert burst["jobs"] == 8 and sum(burst["batch_sizes"].values()) == 8
    assert max(int(size) for size in burst["batch_sizes"]) > 1  # jobs waiting together ran as a batch


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
    assert settings[0] == "catalog" and "attn-_native_math" in settings
    assert all(name.startswith("attn-_native_") for name in settings[1:])  # what torch itself brings
    assert all(row["poster"] for row in attention["rows"])


def test_summary_has_the_targets_and_a_row_per_bench_row_for_the_docs(summary: dict[str, Any], dry_run: Any) -> None:
    markdown = (dry_run[0] / "summary.md").read_text(encoding="utf-8")
    rows = sum(len(run["rows"]) for run in summary["bench"].values())
    attention = len(summary["bench"]["bench-attention"]["rows"])
    assert rows == 2 + 3 + 1 + 2 + attention
    assert markdown.count("`scripts/gpu-check.sh` (bench-") == rows
    every = [row for run in summary["bench"].values() for row in run["rows"]]
    assert all(row["measured"] and row["reference"] for row in every)
    balanced = next(row for row in every if row["bench"] == "bench-wan14" and row["preset"] == "balanced")
    assert "LightX2V 5.18, sglang 6.13, diffusers 9.77" in balanced["reference"]
    burst = summary["bench"]["bench-burst"]["rows"][0]
    assert "one at a time" in burst["reference"] and "jobs at once" in burst["measured"]
    assert markdown.count("Reference: ") == rows
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
    archive = tmp_path / "bench-speed.tar.gz"
    full = _bundle_size(folder, tmp_path / "full.tar.gz")
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


def _bundle_size(folder: Path, archive: Path) -> int:
    done = subprocess.run(
        [sys.executable, str(BUNDLE), str(folder), str(archive), "--limit-mib", "100"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": f"{REPO}:{REPO / 'clients/python'}"},
    )
    assert "left out" not in done.stdout
    return archive.stat().st_size


def test_bundle_puts_several_folders_in_one_archive(dry_run: Any, tmp_path: Path) -> None:
    _, realtime = _results(dry_run[0], "bench-realtime", tmp_path / "in")
    _, attention = _results(dry_run[0], "bench-attention", tmp_path / "in")
    archive = tmp_path / "both.tar.gz"
    subprocess.run(
        [sys.executable, str(BUNDLE), str(realtime), str(attention), str(archive)],
        check=True,
        capture_output=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": f"{REPO}:{REPO / 'clients/python'}"},
    )
    with tarfile.open(archive) as tar:
        tops = {name.split("/")[0] for name in tar.getnames()}
    assert tops == {"bench-realtime", "bench-attention"}
    assert not list(tmp_path.glob(".*.partial"))


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


@pytest.mark.parametrize("args", [[], ["--dry-run"], ["--dry-run", "a", "b"], ["--gpu", "out"], ["--plan", "out"]])
def test_usage_errors_exit_2_before_anything_runs(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args], check=False, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "usage: scripts/gpu-check.sh [--dry-run] OUTDIR | --plan" in done.stderr
    assert list(tmp_path.iterdir()) == []


def _plan_output(*args: str, budget: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", **({"GPU_CHECK_BUDGET_S": budget} if budget else {})}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], check=False, capture_output=True, text=True, timeout=30, env=env
    )


def test_the_gpu_plan_puts_the_most_important_first_and_its_caps_fit_the_budget() -> None:
    done = _plan_output("--plan")
    assert done.returncode == 0, done.stderr
    stages = re.findall(r"^  (\S+) +(\d+)  ", done.stdout, re.MULTILINE)
    names = [name for name, _ in stages]
    assert names == [*STAGES, "save", "total"]
    caps = {name: int(cap) for name, cap in stages}
    total, budget = (int(value) for value in BUDGET_LINE.search(done.stdout).groups())
    assert sum(cap for name, cap in caps.items() if name != "total") == total <= budget
    assert budget + 10 + 30 <= 600  # the kill grace and the last saves inside the device tool's 10-minute command
    assert caps["smoke"] < 60  # the smoke stage: under a minute
    assert "basis: " in done.stdout  # every cap says where it comes from
    assert done.stdout.count("basis: ") == len(STAGES)


@pytest.mark.parametrize("group", ["2", "4", "8"])
def test_on_several_gpus_the_plan_runs_the_14b_on_one_and_on_a_group_and_fits(group: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "GPU_CHECK_GROUP": group}
    done = subprocess.run(["bash", str(SCRIPT), "--plan"], check=False, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert f"plan (gpu, a worker group of {group}):" in done.stdout
    names = [name for name, _ in re.findall(r"^  (\S+) +(\d+)  ", done.stdout, re.MULTILINE)]
    assert names == ["wheels", "smoke", "bench-group", "tests", "save", "total"]
    assert BUDGET_LINE.search(done.stdout) is not None


def test_a_group_size_that_is_no_number_is_refused() -> None:
    env = {"PATH": "/usr/bin:/bin", "GPU_CHECK_GROUP": "two"}
    done = subprocess.run(["bash", str(SCRIPT), "--plan"], check=False, capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "GPU_CHECK_GROUP must be a positive integer" in done.stderr


def test_a_plan_over_its_budget_says_so_and_fails() -> None:
    done = _plan_output("--plan", budget="300")
    assert done.returncode == 1
    assert "of a 300 s budget: DOES NOT FIT: 240 s over" in done.stdout


def test_the_dry_run_shows_the_gpu_plan_before_its_own(dry_run: Any) -> None:
    _, done = dry_run
    log = done.stdout
    gpu, dry = log.index("plan (gpu):"), log.index("plan (dry-run):")
    assert gpu < dry < log.index("=== smoke:")
    assert BUDGET_LINE.search(log[gpu:dry]) is not None
    assert "of a 540 s budget: fits" in log[gpu:dry]


def _gpu_plan(tmp_path: Path) -> dict[str, str]:
    """scripts/gpu/plan.sh's GPU plan, read through bash, and the catalog it writes (into tmp_path)."""
    names = ("MODE", "DEVICE", "SCALE", "BUDGET_S", "WAN14_OVERRIDE", "SPEED_OVERRIDE", "REALTIME_OVERRIDE")
    names += ("LORA_SWAP_OVERRIDE", "COMPILE_BACKEND", "LORA_SWAP_MODEL", "BURST_OVERRIDE", "ATTENTION_OVERRIDE")
    names += ("SMOKE_OVERRIDE", "SMOKE_MODEL", "SMOKE_STYLE", "TEST_TIMEOUT_S", "CAP_tests")
    script = (
        f'source "{REPO}/scripts/gpu/plan.sh" && plan_for gpu && write_catalog "{tmp_path}/catalog.toml" && '
        + " && ".join(f'printf "%s=%s\\n" {name} "${name}"' for name in names)
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
    assert (plan["MODE"], plan["DEVICE"], plan["SCALE"], plan["COMPILE_BACKEND"]) == ("gpu", "cuda", "full", "inductor")
    assert int(plan["TEST_TIMEOUT_S"]) < int(plan["CAP_tests"])  # pytest's own timeout fires first: XML written
    catalog = load_catalog(tmp_path / "catalog.toml")
    models = {name: (entry.synthetic, entry.synthetic_scale, entry.dtype) for name, entry in catalog.models.items()}
    assert models == {
        **{name: (name, None, "bfloat16") for name in ("wan21-i2v-14b-480p", "wan22-ti2v-5b", "ltx-video-2b")},
        plan["SMOKE_MODEL"]: ("wan21-i2v-14b-480p", "narrow", "bfloat16"),
    }
    assert catalog.styles[plan["SMOKE_STYLE"]].model == plan["SMOKE_MODEL"]

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
    burst = resolved("wan22-ti2v-5b", "realtime", plan["BURST_OVERRIDE"])
    assert (burst.width, burst.height, burst.steps, burst.cfg) == (256, 256, 4, 1.0)
    attention = resolved("wan22-ti2v-5b", "fast", plan["ATTENTION_OVERRIDE"])
    assert (attention.width, attention.generated_frames, attention.steps) == (512, 25, 3) and attention.cfg > 1
