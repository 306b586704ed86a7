"""A catalog entry `synthetic = "<name>"` (narrow scale) runs a whole job through the worker's normal load path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.synthetic import SYNTHETIC_MODELS, lookup
from npc_video_client.contract import JobStatus
from pipelines.families import FAMILIES
from tests.support.catalogs import write_catalog
from tests.support.jobs import envelope
from tests.support.video import decode_mp4, path_of
from worker.runtime import build_runtime
from worker.settings import Settings


def synthetic_catalog(name: str) -> str:
    return f"""
[defaults]
model = "syn"

[models.syn]
family = "{lookup(name).family}"
synthetic = "{name}"
synthetic_scale = "narrow"
dtype = "bfloat16"
"""


@pytest.mark.parametrize("name", sorted(SYNTHETIC_MODELS))
def test_a_job_runs_end_to_end_on_the_narrow_synthetic_model(tmp_path: Path, name: str):
    settings = Settings(
        catalog=write_catalog(tmp_path, synthetic_catalog(name)),
        device="cpu",
        storage_url=f"file://{tmp_path / 'outputs'}",
        data_dir=tmp_path / "data",
    )
    runner = build_runtime(settings)
    # 64x64 is also the only size the narrow CogVideoX 1.0 learned positional embeddings take
    result = runner.run(envelope(f"job-{name}", width=64, height=64, duration=0.5))

    assert result.status == JobStatus.COMPLETED, result.error_message
    assert (result.model, result.width, result.height) == ("syn", 64, 64)
    _, frames = decode_mp4(path_of(result.url))
    assert frames.shape == (result.num_frames, 64, 64, 3)
    assert frames.std() > 0  # random weights still move pixels: not a constant clip
    loaded = runner.pool.get("syn")
    assert type(loaded.pipe).__name__ == FAMILIES[lookup(name).family].pipeline_class
    denoiser = loaded.pipe.unet if name == "svd-xt" else loaded.pipe.transformer
    assert denoiser.dtype == torch.bfloat16
    assert runner.pool.disk_loads == 1
