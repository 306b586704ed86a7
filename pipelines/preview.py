"""Live previews without the VAE: the current prediction of the clean video, turned into small RGB frames by a
per-model linear map from latent channels to colour.

Decoding latents with the VAE costs about as much as a denoising step; a preview every few steps must cost a few
percent of one. So, as ComfyUI's latent previews do, each model gets a linear map latent channels -> RGB. It is
fitted once, against the model's own VAE: a calibration picture is encoded, and least squares relate each latent
pixel's channels to the colour of the picture under it. That works for every family, synthetic models included
(their random VAE still has a best linear fit).

At a step, the clean video is predicted from the scheduler's own step (`X0Capture`): the schedulers that return
`pred_original_sample` give it; flow-matching ones (Wan's UniPC with flow sigmas, LTX's flow-match Euler) give
x0 = sample - sigma x velocity. The prediction is in the scheduler's latent space, which each family normalises
its own way from the VAE's: `LAYOUTS` holds, per family, the channel axis of that space and the per-channel affine
that takes it back to the VAE's latents, folded into the map so a preview is one small matrix product on the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CALIBRATION_SIDE = 128  # doubled until the picture gives twice as many latent pixels as the fit has unknowns
LARGEST_CALIBRATION_SIDE = 1024
RIDGE = 1e-3  # latent channels can outnumber calibration pixels' degrees of freedom (LTX: 128 channels)
UPSCALE = 2  # latent pixels are 8-32 px of the video: shown at twice the latent grid


Affine = tuple[torch.Tensor, torch.Tensor]  # per channel: vae_latents = scheduler_latents * scale + shift


def _wan_affine(vae: Any) -> Affine:
    """Wan (2.1 and 2.2 VAEs): the pipeline normalises with the VAE's latents_mean / latents_std."""
    return torch.tensor(vae.config.latents_std), torch.tensor(vae.config.latents_mean)


def _ltx_affine(vae: Any) -> Affine:
    """LTX-Video: normalised with the VAE's latents_mean / latents_std buffers and its scaling factor."""
    std, mean = vae.latents_std.detach().float().cpu(), vae.latents_mean.detach().float().cpu()
    return std / vae.config.scaling_factor, mean


def _scaled_affine(vae: Any) -> Affine:
    """CogVideoX and SVD: latents multiplied by the VAE's scaling factor."""
    channels = vae.config.latent_channels
    return torch.full((channels,), 1.0 / vae.config.scaling_factor), torch.zeros(channels)


@dataclass(frozen=True)
class LatentLayout:
    channel_axis: int  # of the scheduler's latents: 1 for (B, C, F, H, W), 2 for (B, F, C, H, W)
    affine: Callable[[Any], Affine]
    video_vae: bool  # the VAE encodes (B, 3, F, H, W) videos; else (B, 3, H, W) images


LAYOUTS: dict[str, LatentLayout] = {
    "wan-i2v": LatentLayout(1, _wan_affine, video_vae=True),
    "wan22-i2v": LatentLayout(1, _wan_affine, video_vae=True),
    "wan22-ti2v": LatentLayout(1, _wan_affine, video_vae=True),
    "ltx-i2v": LatentLayout(1, _ltx_affine, video_vae=True),
    "cogvideox-i2v": LatentLayout(2, _scaled_affine, video_vae=True),
    "svd": LatentLayout(2, _scaled_affine, video_vae=False),
}


def calibration_picture(side: int) -> torch.Tensor:
    """(3, side, side) in 0..1: smooth bands of every hue and brightness, so the fit sees many colours."""
    axis = torch.linspace(0.0, 1.0, side)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    hue = 2 * math.pi * (x + 0.3 * torch.sin(6 * math.pi * y))
    light = 0.15 + 0.7 * y
    red = light * (0.5 + 0.5 * torch.cos(hue))
    green = light * (0.5 + 0.5 * torch.cos(hue - 2 * math.pi / 3))
    blue = light * (0.5 + 0.5 * torch.cos(hue + 2 * math.pi / 3))
    return torch.stack([red, green, blue]).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PreviewMap:
    """RGB (0..1) = weight @ channels + bias, in the scheduler's latent space of one model."""

    weight: torch.Tensor  # (3, C)
    bias: torch.Tensor  # (3,)
    channel_axis: int

    def render(self, x0: torch.Tensor) -> np.ndarray:
        """The first video of a predicted clean latent batch as uint8 frames (F, H, W, 3), at UPSCALE x the latent
        grid: one small matrix product on the device, a few kilobytes to the host, the upscale there (a preview at
        every step must cost well under a step, also on a CPU: about 0.3 ms for 13 latent frames of 32x32)."""
        video = x0[0] if x0.dim() == 5 else x0
        channels_first = video if self.channel_axis == 1 else video.transpose(0, 1)  # (C, F, h, w)
        channels, frames, height, width = channels_first.shape
        weight = self.weight.to(device=video.device, dtype=torch.float32)
        bias = self.bias.to(device=video.device, dtype=torch.float32)
        rgb = torch.addmm(bias[:, None], weight, channels_first.reshape(channels, -1).float())  # (3, F h w)
        pixels = rgb.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8).cpu().reshape(3, frames, height, width)
        grid = pixels.permute(1, 2, 3, 0)[:, :, None, :, None, :]  # (F, h, 1, w, 1, 3): each pixel, UPSCALE x UPSCALE
        upscaled = grid.expand(frames, height, UPSCALE, width, UPSCALE, 3)
        return upscaled.reshape(frames, height * UPSCALE, width * UPSCALE, 3).numpy()


@torch.no_grad()
def fit_preview_map(pipe: Any, family: str) -> PreviewMap:
    """Fit the map against the pipeline's VAE (one encode of the calibration picture), folded with the family's
    normalisation so that it applies to the scheduler's latents directly."""
    layout = LAYOUTS[family]
    vae = pipe.vae
    side = CALIBRATION_SIDE
    while True:
        picture = calibration_picture(side)
        latents = _encode(vae, picture, video=layout.video_vae)  # (1, C, h, w)
        channels, height, width = latents.shape[1:]
        if height * width >= 2 * (channels + 1) or side >= LARGEST_CALIBRATION_SIDE:
            break
        side *= 2
    target = torch.nn.functional.adaptive_avg_pool2d(picture.unsqueeze(0), (height, width))  # (1, 3, h, w)
    features = latents.reshape(channels, -1).T  # (N, C)
    design = torch.cat([features, torch.ones(features.shape[0], 1)], dim=1)  # (N, C + 1)
    targets = target.reshape(3, -1).T  # (N, 3)
    gram = design.T @ design + RIDGE * torch.eye(channels + 1)
    solution = torch.linalg.solve(gram, design.T @ targets)  # (C + 1, 3)
    weight_vae, bias_vae = solution[:channels].T, solution[channels]
    scale, shift = layout.affine(vae)
    return PreviewMap(
        weight=weight_vae * scale.float(), bias=bias_vae + weight_vae @ shift.float(), channel_axis=layout.channel_axis
    )


def _encode(vae: Any, picture: torch.Tensor, *, video: bool) -> torch.Tensor:
    """The VAE's latents (the mode of its distribution) of one picture in 0..1, as (1, C, h, w) on the CPU."""
    parameter = next(vae.parameters())
    frames = picture.unsqueeze(0) * 2.0 - 1.0  # (1, 3, H, W) in -1..1, what the VAEs take
    if video:
        frames = frames.unsqueeze(2)  # (1, 3, 1, H, W): a one-frame video
    encoded: torch.Tensor = vae.encode(frames.to(device=parameter.device, dtype=parameter.dtype)).latent_dist.mode()
    encoded = encoded.float().cpu()
    return encoded[:, :, 0] if video else encoded


def _is_flow(scheduler: Any) -> bool:
    config = getattr(scheduler, "config", {})
    return "FlowMatch" in type(scheduler).__name__ or config.get("prediction_type") == "flow_prediction"


def _tensor_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(model_output, sample) of a `scheduler.step(model_output, timestep, sample, ...)` call."""
    model_output = kwargs.get("model_output", args[0] if args else None)
    sample = kwargs.get("sample", args[2] if len(args) > 2 else None)
    return model_output, sample


class X0Capture:
    """Records the scheduler's prediction of the clean latents at every step of one pipeline call."""

    def __init__(self) -> None:
        self.latest: torch.Tensor | None = None

    @contextmanager
    def watching(self, scheduler: Any) -> Iterator[None]:
        """Wrap `scheduler.step` on this scheduler object (a batch member's own copy) for the call's duration."""
        original = scheduler.step
        flow = _is_flow(scheduler)

        def step(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            self.latest = self._prediction(scheduler, output, args, kwargs, flow)
            return output

        scheduler.step = step
        try:
            yield
        finally:
            del scheduler.step  # the class's method again

    @staticmethod
    def _prediction(scheduler: Any, output: Any, args: tuple[Any, ...], kwargs: dict[str, Any], flow: bool) -> Any:
        predicted = getattr(output, "pred_original_sample", None)
        if predicted is None and isinstance(output, tuple) and len(output) > 1 and torch.is_tensor(output[1]):
            predicted = output[1]
        if predicted is not None or not flow:
            return predicted
        model_output, sample = _tensor_arguments(args, kwargs)
        index = scheduler.step_index - 1  # the step just taken (the schedulers advance their index at its end)
        sigma = scheduler.sigmas[index].to(device=sample.device, dtype=torch.float32)
        return sample.float() - sigma * model_output.float()
