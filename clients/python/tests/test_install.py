"""A producer installs the client alone: a fresh virtual environment with only `pip install clients/python` stays
small and imports the whole client without torch (tests/worker/test_client.py has the fast import check)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[1]
SIZE_LIMIT_MB = 60
IMPORT_CHECK = """
import sys
import npc_video_client
from npc_video_client import AsyncNpcVideoClient, NpcVideoClient
heavy = sorted(name for name in ("torch", "numpy", "diffusers", "transformers") if name in sys.modules)
assert not heavy, heavy
assert npc_video_client.__file__.startswith(sys.prefix), npc_video_client.__file__
print(npc_video_client.CONTRACT_VERSION)
"""


def folder_size_mb(folder: Path) -> float:
    return sum(path.lstat().st_size for path in folder.rglob("*")) / 2**20


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_fresh_venv_with_only_the_client_is_small_and_has_no_torch(tmp_path):
    venv = tmp_path / "producer-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(CLIENT_DIR)],
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installed = {item["name"].lower().replace("_", "-") for item in json.loads(listed)} - {"pip", "setuptools"}
    assert "torch" not in installed and "npc-video-client" in installed
    assert installed <= {"npc-video-client", "redis", "pydantic", "pydantic-core", "annotated-types"} | {
        "typing-extensions",
        "typing-inspection",
        "async-timeout",  # redis' backport on Python < 3.11.3
    }, installed
    size = folder_size_mb(venv)
    assert size < SIZE_LIMIT_MB, f"the client's venv is {size:.1f} MB"
    checked = subprocess.run([str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "1.2"
