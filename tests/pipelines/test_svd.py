"""Stable Video Diffusion end to end: no prompt (reported as null), intensity as motion, LoRAs refused."""

from __future__ import annotations

import pytest
from PIL import Image

from models.resolution import resolve
from npc_video_client.contract import ErrorCode, JobStatus, NpcResponseParams
from pipelines.families import SVD, motion_bucket_id
from tests.support.jobs import envelope, params
from tests.support.models import write_lora
from worker.runtime import Runtime


@pytest.fixture(scope="module")
def runner(model_dir, tmp_path_factory: pytest.TempPathFactory, family_runner) -> Runtime:
    glow = write_lora(tmp_path_factory.mktemp("svd-lora") / "glow.safetensors", seed=1)  # SVD refuses any LoRA
    return family_runner("svd", model_dir("svd"), {"glow": glow})


def test_snaps_to_the_64_pixel_grid_and_reports_no_prompt(runner: Runtime, video_of) -> None:
    result = runner.run(envelope(width=100, height=70, fps=7, duration=1.0))
    assert (result.width, result.height, result.num_frames, result.fps) == (128, 64, 7, 7)
    assert result.prompt is None and result.negative_prompt is None
    video_of(result)


def test_words_do_not_change_the_video_but_intensity_does(runner: Runtime, video_of) -> None:
    first = runner.run(envelope("calm", expression="calm", emotion="content", intensity=0.2))
    reworded = runner.run(envelope("calm-again", expression="furious", emotion="angry", intensity=0.2))
    livelier = runner.run(envelope("lively", expression="calm", emotion="content", intensity=0.9))
    video_of(first)
    assert reworded.cache_hit and reworded.storage_key == first.storage_key
    assert not livelier.cache_hit and livelier.storage_key != first.storage_key


def test_intensity_cfg_and_fps_map_onto_the_svd_call(runner: Runtime) -> None:
    assert (motion_bucket_id(0.0), motion_bucket_id(0.5), motion_bucket_id(1.0)) == (1, 128, 255)
    job = NpcResponseParams.model_validate(params(intensity=0.25, cfg=2.5, fps=6, duration=3.0))
    request = resolve(job, runner.catalog, (64, 64))
    kwargs = SVD.call_kwargs(request, Image.new("RGB", (64, 64)))
    assert "prompt" not in kwargs and "negative_prompt" not in kwargs
    assert kwargs["motion_bucket_id"] == 65
    assert (kwargs["min_guidance_scale"], kwargs["max_guidance_scale"]) == (1.0, 2.5)
    assert kwargs["fps"] == 7 and kwargs["num_frames"] == 21  # 3 s generated at SVD's own 7 fps (native timing)
    assert kwargs["decode_chunk_size"] == 8


def test_loras_are_refused_naming_the_family(runner: Runtime) -> None:
    result = runner.run(envelope("lora", loras=["glow"]))
    assert result.status == JobStatus.FAILED
    assert result.error_code == ErrorCode.INVALID_PARAMS
    assert '"svd"' in (result.error_message or "") and "loras" in (result.error_message or "")
