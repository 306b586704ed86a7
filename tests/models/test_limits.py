"""A model's limits, read from its checkpoint's configs before it loads: a request beyond them ends at once as
invalid_params naming the limit, the value asked and what to do, instead of failing inside the transformer (a
RuntimeError, internal_error after every retry); requests within them run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from models.catalog import load_catalog
from models.limits import model_limits
from models.synthetic.writer import write_synthetic_model
from npc_video_client.contract import ErrorCode, JobResult, JobStatus
from pipelines.limits import ModelLimits
from tests.support.catalogs import write_catalog
from tests.support.jobs import data_uri, envelope, png_bytes
from tests.support.models import write_model
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings

RUN = {"steps": 1, "fps": 8}


def edited(directory: Path, component: str, **values: Any) -> Path:
    """The checkpoint with these values written into a component's config.json (a model with smaller tables)."""
    path = directory / component / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**config, **values}), encoding="utf-8")
    return directory


def runner_for(root: Path, family: str, model: str) -> Runtime:
    text = f'[defaults]\nmodel = "m"\n\n[models.m]\nfamily = "{family}"\n{model}\ndtype = "float32"\n'
    return build_runtime(
        Settings(
            catalog=write_catalog(root, text),
            device="cpu",
            storage_url=f"file://{root / 'outputs'}",
            data_dir=root / "data",
        )
    )


def refused(runner: Runtime, job_id: str, **params: Any) -> str:
    """The job's error message, after checking it ended as invalid_params without loading the model."""
    result = runner.run(envelope(job_id, **params))
    assert (result.status, result.error_code) == (JobStatus.FAILED, ErrorCode.INVALID_PARAMS), result.error_message
    assert not runner.pool.is_loaded("m")  # refused at resolution: nothing was read from disk
    return result.error_message or ""


def completed(runner: Runtime, job_id: str, **params: Any) -> JobResult:
    result = runner.run(envelope(job_id, **params))
    assert result.status == JobStatus.COMPLETED, result.error_message
    return result


@pytest.fixture(scope="module")
def short_wan(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    """Wan 2.1 whose rotary tables cover 8 positions per axis: 8 latent frames (29 frames), sides up to 128 px."""
    root = tmp_path_factory.mktemp("short-wan")
    model = edited(write_model("wan-i2v", root / "model"), "transformer", rope_max_seq_len=8)
    return runner_for(root, "wan-i2v", f'path = "{model}"')


def test_a_duration_beyond_the_wan_rotary_table_is_refused_naming_the_limit(short_wan: Runtime) -> None:
    message = refused(short_wan, "long", duration=12.0, width=64, height=64, **RUN)
    assert "at most 29 frames" in message and "193" in message  # 12 s of 16 fps motion: 193 frames (4k+1)
    assert "rope_max_seq_len = 8" in message and "shorter duration" in message


def test_a_side_beyond_the_wan_rotary_table_is_refused(short_wan: Runtime) -> None:
    message = refused(short_wan, "wide", width=144, height=64, duration=0.5, **RUN)
    assert "144x64" in message and "at most 128x128" in message and "smaller width or height" in message


def test_requests_at_the_edges_of_the_wan_tables_run(short_wan: Runtime) -> None:
    widest = completed(short_wan, "widest", width=128, height=32, duration=0.25, **RUN)
    longest = completed(short_wan, "longest", width=32, height=128, duration=1.75, **RUN)  # 29 frames at 16 fps
    assert (widest.width, longest.height, longest.generated_frames) == (128, 128, 29)


def test_cogvideox_10_runs_at_its_training_size_only(tmp_path: Path) -> None:
    """CogVideoX-5b-I2V 1.0 has learned positional embeddings (the narrow model's: 64x64)."""
    model = tmp_path / "model"

    write_synthetic_model(model, "cogvideox-5b-i2v", dtype=torch.float32, device="cpu", scale="narrow")
    runner = runner_for(tmp_path, "cogvideox-i2v", f'path = "{model}"')
    message = refused(runner, "other-size", width=96, height=64, duration=0.5, **RUN)
    assert "96x64" in message and "exactly 64x64" in message and "use_learned_positional_embeddings" in message
    assert completed(runner, "its-size", width=64, height=64, duration=0.5, **RUN).width == 64


def test_a_synthetic_entry_is_checked_from_its_recipe(tmp_path: Path) -> None:
    runner = runner_for(tmp_path, "cogvideox-i2v", 'synthetic = "cogvideox-5b-i2v"\nsynthetic_scale = "narrow"')
    assert "exactly 64x64" in refused(runner, "other-size", width=96, height=64, duration=0.5, **RUN)


def test_a_wide_image_beyond_the_cogvideox_15_rotary_tables_is_refused(tmp_path: Path) -> None:
    """A very wide base image, no size asked: the preset's area at the image's aspect, clamped to 2048 px wide."""
    model = edited(write_model("cogvideox-i2v", tmp_path / "model"), "transformer", sample_width=96, sample_height=96)
    runner = runner_for(tmp_path, "cogvideox-i2v", f'path = "{model}"')
    wide = data_uri(png_bytes(size=(4000, 40)))
    message = refused(runner, "wide", npc_base_image=wide, width=None, height=None, duration=0.5, **RUN)
    assert "2048x" in message and "at most 768x768" in message and "sample_width = 96" in message


def test_full_size_models_have_the_limits_of_their_published_configs(tmp_path: Path) -> None:
    catalog = load_catalog(
        write_catalog(
            tmp_path,
            '[defaults]\nmodel = "wan"\n'
            + "".join(
                f'[models.{name}]\nfamily = "{family}"\nsynthetic = "{synthetic}"\n'
                for name, family, synthetic in (
                    ("wan", "wan-i2v", "wan21-i2v-14b-480p"),
                    ("ti2v", "wan22-ti2v", "wan22-ti2v-5b"),
                    ("cog10", "cogvideox-i2v", "cogvideox-5b-i2v"),
                    ("cog15", "cogvideox-i2v", "cogvideox15-5b-i2v"),
                    ("ltx", "ltx-i2v", "ltx-video-2b"),
                    ("svd", "svd", "svd-xt"),
                )
            ),
        )
    )
    limits = {name: model_limits(entry) for name, entry in catalog.models.items()}
    # Wan: 1024 rotary positions per axis; 4x time and 8x (Wan 2.2 VAE: 16x) space, 2x2 patches
    assert (limits["wan"].max_frames, limits["wan"].max_size) == (4093, (16384, 16384))
    assert (limits["ti2v"].max_frames, limits["ti2v"].max_size) == (4093, (32768, 32768))
    assert (limits["cog10"].exact_size, limits["cog15"].max_size) == ((720, 480), (2400, 2400))
    assert limits["cog15"].exact_size is None and limits["cog10"].max_frames is None
    assert limits["svd"] == ModelLimits()  # no table bounds what SVD takes
    assert limits["ltx"] == ModelLimits(min_steps=2, steps_reason=limits["ltx"].steps_reason)  # nor LTX's sizes
    assert limits["wan"].min_steps is None  # UniPC takes one step


def test_one_step_on_a_scheduler_with_a_terminal_shift_is_refused(tmp_path: Path) -> None:
    """LTX-Video's flow-match scheduler stretches its sigmas to `shift_terminal`: with one step they are NaN."""
    runner = runner_for(tmp_path, "ltx-i2v", f'path = "{write_model("ltx-i2v", tmp_path / "model")}"')
    message = refused(runner, "one-step", steps=1, fps=8, duration=0.5)
    assert "at least 2 denoising steps" in message and "shift_terminal = 0.1" in message
    assert "ask for steps = 2 or more" in message
    assert completed(runner, "two-steps", steps=2, fps=8, duration=0.5).steps == 2


def test_limits_are_read_once_per_model(tmp_path: Path) -> None:
    model = edited(write_model("wan22-ti2v", tmp_path / "model"), "transformer", rope_max_seq_len=8)
    runner = runner_for(tmp_path, "wan22-ti2v", f'path = "{model}"')
    entry = runner.catalog.models["m"]
    first = model_limits(entry)
    (model / "transformer" / "config.json").unlink()
    assert model_limits(entry) == first and first.max_frames == 29


def test_a_model_without_readable_configs_has_no_limits(tmp_path: Path) -> None:
    catalog = load_catalog(
        write_catalog(tmp_path, f'[defaults]\nmodel = "m"\n[models.m]\nfamily = "wan-i2v"\npath = "{tmp_path}/none"\n')
    )
    assert model_limits(catalog.models["m"]) == ModelLimits()
