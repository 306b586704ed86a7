"""The exact request that runs and is reported: what a pipeline call needs, resolved from a job by
models.resolution (which knows the catalog; this module does not, so pipelines stay below the catalog)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from npc_video_client.contract import QualityPreset
from pipelines.timing import FrameTiming


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA as a job uses it; `digest` is the sha256 of the file's bytes (a file replaced in place is another
    LoRA: it is loaded again, and videos made with the old one are not reused)."""

    name: str
    weight: float
    path: Path
    digest: str = ""


@dataclass(frozen=True)
class ResolvedRequest:
    """`num_frames` and `fps` describe the encoded file; `generated_frames` at `generated_fps` are what the
    pipeline renders (pipelines.timing: equal under `stretch`, the family's native rate under `native`)."""

    model: str
    family: str
    preset: QualityPreset
    width: int
    height: int
    num_frames: int
    fps: int
    generated_frames: int
    generated_fps: int
    steps: int
    cfg: float
    seed: int
    prompt: str | None  # None: the family takes no prompt (SVD), so none was used
    negative_prompt: str | None
    loras: tuple[LoraChoice, ...]
    motion: float  # the job's intensity: families without a prompt (SVD) turn it into motion conditioning

    @property
    def duration_sec(self) -> float:
        """The file's length."""
        return round(self.num_frames / self.fps, 3)

    @property
    def timing(self) -> FrameTiming:
        return FrameTiming(self.generated_frames, self.generated_fps, self.num_frames, self.fps)

    def fingerprint(self, model_identity: str, image_sha256: str) -> str:
        """sha256 over everything that determines the video: the content-addressed storage key.
        `model_identity` stands for the model's weights and settings (models.identity)."""
        identity: dict[str, Any] = asdict(self)
        identity["loras"] = [[lora.name, lora.weight, lora.digest] for lora in self.loras]
        identity["model"] = [self.model, model_identity]
        identity["image_sha256"] = image_sha256
        canonical = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
