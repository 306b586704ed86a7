"""The `npc-worker` console script, run as producers and operators run it: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.jobs import envelope
from tests.support.video import decode_mp4, path_of

PARAM_FIELDS = {
    "npc_id",
    "npc_name",
    "npc_base_image",
    "expression",
    "emotion",
    "animation",
    "intensity",
    "art_style",
    "loras",
    "prompt",
    "negative_prompt",
    "quality_preset",
    "width",
    "height",
    "fps",
    "duration",
    "steps",
    "cfg",
    "seed",
}


def script() -> str:
    beside = Path(sys.executable).parent / "npc-worker"
    found = str(beside) if beside.exists() else shutil.which("npc-worker")
    assert found, "the npc-worker console script is not installed (pip install -e .)"
    return found


def npc_worker(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("NPC_WORKER_")}
    env.update({"HF_HUB_OFFLINE": "1", "NPC_WORKER_DATA_DIR": str(cwd / "data"), "NPC_WORKER_LOG_LEVEL": "WARNING"})
    return subprocess.run(
        [script(), *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


def last_line_json(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert lines, "nothing on stdout"
    return json.loads(lines[-1])


# -- schema (no torch: fast) ------------------------------------------------------------------------------


def test_schema_prints_all_four_schemas(tmp_path):
    done = npc_worker("schema", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    schemas = json.loads(done.stdout)
    assert set(schemas) == {"envelope", "result", "event", "state"}
    envelope_schema = schemas["envelope"]
    assert set(envelope_schema["required"]) == {"job_id", "operation_type", "params"}
    params_schema = envelope_schema["$defs"]["NpcResponseParams"]
    assert set(params_schema["properties"]) == PARAM_FIELDS
    assert set(params_schema["required"]) == {"npc_id", "npc_name", "expression", "emotion", "animation", "intensity"}
    assert params_schema["properties"]["intensity"]["maximum"] == 1.0
    event_types = {variant["$ref"].rsplit("/", 1)[-1] for variant in schemas["event"]["oneOf"]}
    assert len(event_types) == 7  # 1.2 added job:preview
    assert "discriminator" not in schemas["event"]  # strict validators (Ajv) refuse it: variants are told by `type`
    assert "job:completed" in json.dumps(schemas["event"]["$defs"])
    assert "error_code" in schemas["result"]["properties"]


def test_schema_envelope_prints_only_the_envelope(tmp_path):
    done = npc_worker("schema", "envelope", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert schema["title"] == "JobEnvelope"
    assert set(schema["properties"]) >= {"job_id", "operation_type", "params", "deadline", "submitted_at"}
    assert set(schema["$defs"]["NpcResponseParams"]["properties"]) == PARAM_FIELDS


def test_schema_of_unknown_kind_is_a_usage_error(tmp_path):
    done = npc_worker("schema", "everything", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""


# -- synthetic write and generate (the tiny model: keep these few) ----------------------------------------


@pytest.fixture(scope="module")
def cli_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Wan checkpoint written by `npc-worker synthetic write` (then used by the generate tests)."""
    folder = tmp_path_factory.mktemp("cli-model")
    done = npc_worker(
        "synthetic", "write", "wan21-i2v-14b-480p", str(folder / "tiny"), "--scale", "narrow", "--dtype", "float32",
        cwd=folder,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(folder / "tiny")
    return folder / "tiny"


@pytest.fixture
def cli_catalog(tmp_path: Path, cli_model: Path) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(
        f'[defaults]\nmodel = "tiny"\n\n[models.tiny]\nfamily = "wan-i2v"\npath = "{cli_model}"\ndtype = "float32"\n',
        encoding="utf-8",
    )
    return path


def test_synthetic_write_writes_a_diffusers_checkpoint(cli_model):
    index = json.loads((cli_model / "model_index.json").read_text())
    assert index["_class_name"] == "WanImageToVideoPipeline"
    assert (cli_model / "transformer" / "config.json").is_file()


def test_synthetic_write_of_an_unknown_model_exits_2(tmp_path):
    done = npc_worker("synthetic", "write", "sora", str(tmp_path / "x"), cwd=tmp_path)
    assert done.returncode == 2
    assert "unknown synthetic model 'sora'" in done.stderr and "wan21-i2v-14b-480p" in done.stderr
    assert not (tmp_path / "x").exists()


def test_generate_prints_the_result_last_and_writes_the_mp4(tmp_path, cli_catalog):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(envelope("cli-1", width=64, height=48, fps=8, duration=1.0)), encoding="utf-8")
    outputs = tmp_path / "outputs"
    done = npc_worker(
        "generate", str(job), "--catalog", str(cli_catalog), "--device", "cpu", "--storage-url", f"file://{outputs}",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = last_line_json(done.stdout)
    assert result["status"] == "completed" and result["job_id"] == "cli-1"
    assert (result["width"], result["height"], result["fps"], result["num_frames"]) == (64, 48, 8, 8)
    assert (result["generated_frames"], result["generated_fps"]) == (17, 16)
    video = path_of(result["url"])
    assert video.is_file() and video.is_relative_to(outputs)
    assert decode_mp4(video)[1].shape == (8, 48, 64, 3)
    assert path_of(result["thumbnail_url"]).is_file()
    assert not (tmp_path / "data").exists()  # an explicit catalog builds no embedded demo


def test_failing_job_from_stdin_exits_1_with_the_error_in_the_last_line(tmp_path, cli_catalog):
    job = json.dumps(envelope("cli-bad", intensity=1.5))
    done = npc_worker(
        "generate", "-", "--catalog", str(cli_catalog), "--device", "cpu",
        "--storage-url", f"file://{tmp_path / 'outputs'}", cwd=tmp_path, stdin=job,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    result = last_line_json(done.stdout)
    assert result["status"] == "failed" and result["job_id"] == "cli-bad"
    assert result["error_code"] == "invalid_params"
    assert "params.intensity" in result["error_message"]
    assert result["url"] is None


def test_malformed_catalog_exits_2_with_the_catalog_error(tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[defaults]\nmodel = "ghost"\n\n[models.real]\nfamily = "wan-i2v"\npath = "x"\n')
    job = tmp_path / "job.json"
    job.write_text(json.dumps(envelope()))
    done = npc_worker("generate", str(job), "--catalog", str(catalog), "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 2
    assert f"error: catalog {catalog}" in done.stderr
    assert "[defaults.model]" in done.stderr and "'ghost'" in done.stderr
    assert done.stdout.strip() == ""


# -- usage errors (in-process: no model is loaded before they are found) ----------------------------------


@pytest.fixture
def cli(monkeypatch):
    """Invoke the typer app in-process, without letting it reconfigure the test process's logging."""
    from typer.testing import CliRunner

    import worker.logs
    from worker.cli import app

    monkeypatch.setattr(worker.logs, "configure_logging", lambda level=None: None)
    return lambda *args: CliRunner().invoke(app, list(args))


def test_invalid_device_exits_2_naming_the_setting(cli, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps(envelope()))
    done = cli("generate", str(job), "--device", "tpu")
    assert done.exit_code == 2
    assert "invalid settings" in done.output and "must be auto, cpu, cuda or cuda:N" in done.output


def test_missing_job_file_is_a_usage_error(cli, tmp_path):
    (tmp_path / "weights").mkdir()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[defaults]\nmodel = "m"\n[models.m]\nfamily = "wan-i2v"\npath = "weights"\n')
    done = cli("generate", str(tmp_path / "absent.json"), "--catalog", str(catalog), "--device", "cpu")
    assert done.exit_code == 2
    assert "absent.json" in done.output
