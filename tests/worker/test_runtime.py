"""End to end through Runtime on the tiny real Wan pipeline: envelope -> MP4 in local storage -> result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from npc_video_client.contract import ErrorCode, JobStatus
from pipelines import families
from pipelines.families import WAN_I2V
from tests.support.failing_pipelines import OutOfMemoryWanPipeline
from tests.support.jobs import data_uri, envelope, png_bytes
from tests.support.video import decode_mp4, path_of


def test_generates_a_playable_mp4_matching_the_result(runner):
    result = runner.run(envelope(width=64, height=48, fps=8, duration=1.0))
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert (result.width, result.height, result.fps, result.num_frames) == (64, 48, 8, 8)
    assert (result.generated_frames, result.generated_fps) == (17, 16)  # Wan's own rate, resampled down to 8 fps
    assert result.content_type == "video/mp4"
    assert result.duration_sec == pytest.approx(1.0, abs=1e-3)
    meta, frames = decode_mp4(path_of(result.url))
    assert frames.shape == (8, 48, 64, 3)
    assert meta["fps"] == pytest.approx(8)
    assert path_of(result.thumbnail_url).read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG
    assert result.storage_key and result.storage_key.startswith("npc-7/")
    assert result.timings.total_ms >= result.timings.generate_ms > 0
    assert not result.cache_hit


@pytest.mark.parametrize("fps", [8, 30])
def test_a_3_s_job_lasts_3_s_at_any_fps_with_motion_generated_at_16_fps(runner, fps):
    """Issue 10: Wan's motion is timed at 16 fps, so 3 s are 49 generated frames (48 snapped to 4k+1, 3.0625 s)
    whatever the output rate; the file is resampled to `fps` and lasts the 3 s asked for, +- one output frame."""
    result = runner.run(envelope(f"timing-{fps}", width=32, height=32, fps=fps, duration=3.0, steps=1))
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert (result.generated_fps, result.generated_frames) == (16, WAN_I2V.frame_rule.snap(48)) == (16, 49)
    meta, frames = decode_mp4(path_of(result.url))
    assert meta["fps"] == pytest.approx(fps) and result.fps == fps
    assert len(frames) == result.num_frames
    duration = len(frames) / fps
    assert result.duration_sec == pytest.approx(duration, abs=1e-3)
    assert abs(duration - 3.0) <= 1 / fps + 1e-9  # 3 s, +- one frame of the file
    assert duration <= 49 / 16  # never more than the generated motion
    with Image.open(path_of(result.thumbnail_url)) as poster:  # the poster is the first frame
        pixels = np.asarray(poster.convert("RGB")).astype(int)
    assert np.abs(pixels - frames[0]).mean() < np.abs(pixels - frames[-1]).mean() / 2


def test_stretch_timing_plays_fps_x_duration_generated_frames_as_another_video(make_runner):
    job = envelope(width=32, height=32, fps=8, duration=1.0)
    native = make_runner().run(job)
    stretch = make_runner(catalog_extra='[models.tiny-wan.presets.realtime]\nmotion = "stretch"\n').run(job)
    assert (native.generated_frames, native.generated_fps, native.num_frames, native.fps) == (17, 16, 8, 8)
    assert (stretch.generated_frames, stretch.generated_fps, stretch.num_frames, stretch.fps) == (9, 8, 9, 8)
    assert len(decode_mp4(path_of(stretch.url))[1]) == 9
    assert stretch.storage_key != native.storage_key and not stretch.cache_hit  # same storage, not reused


def test_mp4_is_h264_yuv420p_with_faststart(runner):
    result = runner.run(envelope())
    data = path_of(result.url).read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "moov atom must come first (+faststart)"
    assert b"avc1" in data


def test_same_job_twice_gives_identical_video(make_runner, tmp_path):
    first = make_runner(storage_url=f"file://{tmp_path / 'a'}").run(envelope())
    second = make_runner(storage_url=f"file://{tmp_path / 'b'}").run(envelope())
    assert first.storage_key == second.storage_key
    assert path_of(first.url).read_bytes() == path_of(second.url).read_bytes()


def test_identical_request_is_a_cache_hit(runner):
    first = runner.run(envelope("a"))
    second = runner.run(envelope("b"))
    assert not first.cache_hit and second.cache_hit
    assert second.url == first.url and second.timings.generate_ms == 0


def test_seed_defaults_to_a_stable_hash_of_npc_id(runner):
    result = runner.run(envelope())
    assert result.seed == 3283240500  # first 4 bytes of sha256("npc-7"), big-endian; never the salted hash()


def _frames(runner, job_id: str, **params) -> np.ndarray:
    result = runner.run(envelope(job_id, **params))
    assert result.status == JobStatus.COMPLETED, result.error_message
    return decode_mp4(path_of(result.url))[1]


def test_lora_changes_video_and_weight_zero_or_none_give_the_base_exactly(runner):
    base = _frames(runner, "base")
    glow = _frames(runner, "glow", loras=["glow"])
    assert np.abs(glow.astype(int) - base).max() > 0
    zero = _frames(runner, "zero", loras=["glow:0"])
    assert np.array_equal(zero, base)
    after = _frames(runner, "after", seed=1)  # adapters loaded but disabled: still the base model
    fresh = _frames(runner, "fresh-seed", seed=1, loras=[])
    assert np.array_equal(after, fresh)


def test_no_lora_after_loras_is_bit_identical_to_a_pipeline_that_never_had_one(make_runner, tmp_path):
    job = envelope("x", seed=5)
    never = make_runner(storage_url=f"file://{tmp_path / 'never'}").run(job)
    used = make_runner(storage_url=f"file://{tmp_path / 'used'}")
    used.run(envelope("warm", loras=["glow", "comfy:0.5"]))
    again = used.run(job)
    assert decode_mp4(path_of(never.url))[1].tolist() == decode_mp4(path_of(again.url))[1].tolist()


def test_switching_loras_never_reloads_model_or_files(runner):
    for index, loras in enumerate((["glow"], ["sparkle"], ["glow"], ["glow", "sparkle:0.5"], [])):
        assert runner.run(envelope(f"j{index}", seed=index, loras=loras)).status == JobStatus.COMPLETED
    loaded = runner.pool.get("tiny-wan")
    assert runner.pool.disk_loads == 1
    assert loaded.adapters.disk_loads == 2


def test_lora_cache_evicts_least_recently_used(make_runner):
    runner = make_runner(lora_cache_size=1)
    runner.run(envelope("a", loras=["glow"]))
    runner.run(envelope("b", loras=["sparkle"]))
    adapters = runner.pool.get("tiny-wan").adapters
    assert adapters.loaded == ["sparkle"] and adapters.evictions == 1
    adapter_names = {n for names in runner.pool.get("tiny-wan").pipe.get_list_adapters().values() for n in names}
    assert adapter_names == {"sparkle"}


def test_comfyui_format_lora_loads_and_changes_output(runner):
    base = _frames(runner, "base")
    comfy = _frames(runner, "comfy", loras=["comfy"])
    assert np.abs(comfy.astype(int) - base).max() > 0


def test_result_reports_prompt_loras_and_resolved_values(runner):
    result = runner.run(envelope(loras=["glow:0.4"], animation="wave", intensity=0.9, cfg=2.5))
    assert result.loras[0].name == "glow" and result.loras[0].weight == 0.4
    assert result.prompt == "Mira, very interested, pleased expression, wave animation, glow look"
    assert result.cfg == 2.5 and result.steps == 2 and result.negative_prompt == "low quality, blurry"


@pytest.mark.parametrize(
    ("change", "code", "needle"),
    [
        ({"intensity": 1.5}, ErrorCode.INVALID_PARAMS, "params.intensity"),
        ({"quality_preset": "ultra"}, ErrorCode.INVALID_PARAMS, "params.quality_preset"),
        ({"loras": ["nope"]}, ErrorCode.UNKNOWN_LORA, '"nope"'),
        ({"loras": ["glow:3"]}, ErrorCode.INVALID_PARAMS, "-2.0..2.0"),
        ({"npc_base_image": "data:text/plain;base64,aGVsbG8="}, ErrorCode.INVALID_IMAGE, "text/plain"),
        ({"npc_base_image": data_uri(b"not an image")}, ErrorCode.INVALID_IMAGE, "cannot be decoded"),
        ({"npc_base_image": "/etc/passwd"}, ErrorCode.INVALID_IMAGE, "outside the allowed input roots"),
        ({"npc_base_image": None}, ErrorCode.INVALID_PARAMS, "npcs.npc-7"),
        ({"npc_base_image": "gopher://example.com/x.png"}, ErrorCode.INVALID_IMAGE, "gopher"),
    ],
)
def test_bad_input_fails_with_the_right_code_and_names_the_problem(runner, change, code, needle):
    result = runner.run(envelope("bad", **change))
    assert result.status == JobStatus.FAILED
    assert result.error_code == code
    assert needle in (result.error_message or "")
    assert result.url is None


def test_unknown_operation_and_malformed_json_are_invalid_params(runner):
    wrong = {**envelope("op"), "operation_type": "npc_dance"}
    assert runner.run(wrong).error_code == ErrorCode.INVALID_PARAMS
    broken = runner.run("{not json")
    assert broken.error_code == ErrorCode.INVALID_PARAMS and broken.job_id == "unknown"


def test_path_under_input_roots_is_allowed(make_runner, tmp_path):
    image = tmp_path / "inputs" / "face.png"
    image.parent.mkdir()
    image.write_bytes(png_bytes())
    result = make_runner(input_roots=[tmp_path / "inputs"]).run(envelope(npc_base_image=str(image)))
    assert result.status == JobStatus.COMPLETED, result.error_message


def test_symlink_out_of_input_roots_is_refused(make_runner, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "link.png").symlink_to(outside)
    result = make_runner(input_roots=[tmp_path / "inputs"]).run(
        envelope(npc_base_image=str(tmp_path / "inputs" / "link.png"))
    )
    assert result.error_code == ErrorCode.INVALID_IMAGE


def test_catalog_npc_base_image_is_used_when_the_job_has_none(make_runner, tmp_path):
    (tmp_path / "npc.png").write_bytes(png_bytes((64, 96)))
    runner = make_runner(catalog_extra=f'[npcs.npc-7]\nbase_image = "{tmp_path / "npc.png"}"\n')
    result = runner.run(envelope(npc_base_image=None, width=None, height=None))
    assert result.status == JobStatus.COMPLETED, result.error_message
    assert result.height > result.width  # the portrait aspect ratio is followed


def test_expired_deadline_is_reported_as_expired(runner):
    result = runner.run({**envelope(), "deadline": 1})
    assert result.status == JobStatus.EXPIRED and result.error_code == ErrorCode.DEADLINE_EXCEEDED


def test_out_of_memory_fails_retryably_and_the_runner_keeps_working(make_runner, monkeypatch):
    oom_family = replace(WAN_I2V, pipeline_class="tests.support.failing_pipelines:OutOfMemoryWanPipeline")
    monkeypatch.setitem(families.FAMILIES, "wan-i2v", oom_family)
    monkeypatch.setattr(OutOfMemoryWanPipeline, "calls", 0)
    runner = make_runner()
    failed = runner.run(envelope("oom"))
    assert failed.error_code == ErrorCode.OUT_OF_MEMORY and failed.width == 64
    assert runner.run(envelope("next")).status == JobStatus.COMPLETED


def test_catalog_ckpt_lora_is_refused_at_start(make_runner, tmp_path):
    from models.catalog import CatalogError

    bad = tmp_path / "evil.ckpt"
    bad.write_bytes(b"pickle")
    with pytest.raises(CatalogError, match=r"loras\.evil\.path.*not \.safetensors"):
        make_runner(catalog_extra=f'[loras.evil]\npath = "{bad}"\n')


def test_outputs_are_written_atomically(runner):
    result = runner.run(envelope())
    folder = path_of(result.url).parent
    assert not [p for p in folder.iterdir() if p.name.startswith(".partial-")]
    assert isinstance(folder, Path)
