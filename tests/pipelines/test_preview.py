"""Live previews without the VAE: a linear map from latent channels to RGB fitted against each family's own VAE,
the scheduler's prediction of the clean latents captured at every step, frames sent where the sink asks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler
from PIL import Image

from models.catalog import load_catalog
from models.resolution import resolve
from npc_video_client.errors import JobCancelled
from pipelines.families import FAMILIES
from pipelines.preview import LAYOUTS, UPSCALE, X0Capture, _encode, calibration_picture, fit_preview_map
from pipelines.runner import run_pipeline
from tests.support.catalogs import write_catalog
from tests.support.jobs import params
from tests.support.models import write_model


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def family_pipe(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any, Path]:
    import diffusers

    family = request.param
    directory = tmp_path_factory.mktemp("preview") / family
    write_model(family, directory)
    pipe = getattr(diffusers, FAMILIES[family].pipeline_class).from_pretrained(str(directory), dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return family, pipe, directory


def test_every_family_has_a_layout():
    assert set(LAYOUTS) == set(FAMILIES)


def test_the_map_folds_the_familys_normalisation_in(family_pipe):
    """Applied to scheduler-space latents, the folded map gives what the VAE-space fit gives on the VAE's latents."""
    family, pipe, _ = family_pipe
    preview_map = fit_preview_map(pipe, family)
    layout = LAYOUTS[family]
    latents = _encode(pipe.vae, calibration_picture(128), video=layout.video_vae)  # (1, C, h, w): VAE space
    scale, shift = layout.affine(pipe.vae)
    channels = latents.shape[1]
    assert preview_map.weight.shape == (3, channels) and preview_map.bias.shape == (3,)
    scheduler_space = (latents - shift.view(1, -1, 1, 1)) / scale.view(1, -1, 1, 1)
    video = scheduler_space.unsqueeze(2)  # (1, C, 1, h, w)
    if layout.channel_axis == 2:
        video = video.transpose(1, 2)  # (1, 1, C, h, w)
    rendered = preview_map.render(video)
    assert rendered.dtype == np.uint8 and rendered.shape == (
        1,
        latents.shape[2] * UPSCALE,
        latents.shape[3] * UPSCALE,
        3,
    )
    weight_vae = preview_map.weight / scale.view(1, -1)
    bias_vae = preview_map.bias - weight_vae @ shift
    direct = torch.einsum("kc,chw->hwk", weight_vae, latents[0]) + bias_vae
    expected = (direct.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    expected = expected.repeat(UPSCALE, axis=0).repeat(UPSCALE, axis=1)
    assert np.abs(rendered[0].astype(int) - expected.astype(int)).max() <= 1


class Sink:
    def __init__(self, every: int) -> None:
        self.every = every
        self.sent: list[tuple[int, np.ndarray]] = []

    def preview_due(self, step: int, total: int) -> bool:
        return step == 1 or step % self.every == 0 or step == total

    def preview(self, step: int, total: int, frames: np.ndarray) -> None:
        self.sent.append((step, frames))


def _request(tmp_path: Path, family: str, model_dir: Path, **overrides: Any) -> Any:
    catalog = load_catalog(
        write_catalog(tmp_path, f'[defaults]\nmodel = "m"\n[models.m]\nfamily = "{family}"\npath = "{model_dir}"\n')
    )
    from npc_video_client.contract import NpcResponseParams

    job = params(**{"steps": 4, "width": 64, "height": 64, "duration": 0.5, "fps": 8, **overrides})
    job.pop("npc_base_image")
    return resolve(NpcResponseParams.model_validate(job), catalog, (64, 64))


def test_a_call_sends_previews_where_the_sink_asks_and_they_change(family_pipe, tmp_path):
    family, pipe, directory = family_pipe
    request = _request(tmp_path, family, directory)
    sink = Sink(every=2)
    image = Image.new("RGB", (request.width, request.height), (200, 120, 40))
    frames = run_pipeline(
        pipe, FAMILIES[family], request, image, lambda _s, _t: None, preview=(fit_preview_map(pipe, family), sink)
    )
    assert frames.dtype == np.uint8  # the call itself is unchanged: it still returns the decoded frames
    steps = [step for step, _ in sink.sent]
    assert steps == [1, 2, 4]
    shapes = {shot.shape for _, shot in sink.sent}
    assert len(shapes) == 1 and next(iter(shapes))[-1] == 3
    assert not np.array_equal(sink.sent[0][1], sink.sent[-1][1])  # the prediction moves as the noise goes


def test_a_stopped_call_sends_no_preview_for_the_step_it_stopped_at(family_pipe, tmp_path):
    family, pipe, directory = family_pipe
    request = _request(tmp_path, family, directory)
    sink = Sink(every=1)

    def stop_at_two(step: int, _total: int) -> None:
        if step == 2:
            raise JobCancelled("j")

    image = Image.new("RGB", (request.width, request.height), (200, 120, 40))
    with pytest.raises(JobCancelled):
        run_pipeline(pipe, FAMILIES[family], request, image, stop_at_two, preview=(fit_preview_map(pipe, family), sink))
    assert [step for step, _ in sink.sent] == [1]
    assert "step" not in vars(pipe.scheduler)  # the scheduler's own step again


def test_flow_matching_prediction_is_sample_minus_sigma_times_velocity():
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(4)
    capture = X0Capture()
    sample, velocity = torch.randn(1, 4, 2, 3, 3), torch.randn(1, 4, 2, 3, 3)
    with capture.watching(scheduler):
        scheduler.step(velocity, scheduler.timesteps[0], sample)
    assert capture.latest is not None
    assert torch.allclose(capture.latest, sample - scheduler.sigmas[0] * velocity)


def test_a_scheduler_that_predicts_the_clean_sample_gives_its_own():
    scheduler = DDIMScheduler()
    scheduler.set_timesteps(4)
    capture = X0Capture()
    sample, noise = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    with capture.watching(scheduler):
        output = scheduler.step(noise, scheduler.timesteps[0], sample)
    assert capture.latest is not None and torch.equal(capture.latest, output.pred_original_sample)
