"""A job runner on a one-model catalog for any family: each family's tests bring their own tiny checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from npc_video_client.contract import JobResult, JobStatus
from tests.support.catalogs import write_catalog
from tests.support.video import decode_mp4, path_of
from worker.runtime import Runtime, build_runtime
from worker.settings import Settings

FamilyRunner = Callable[..., Runtime]
MODEL = "tiny"


@pytest.fixture(scope="module")
def family_runner(tmp_path_factory: pytest.TempPathFactory) -> FamilyRunner:
    """`family_runner(family, model_dir, loras={name: path})`: catalog model "tiny", outputs in a fresh folder."""

    def factory(family: str, model_dir: Path, loras: Mapping[str, Path] | None = None) -> Runtime:
        root = tmp_path_factory.mktemp(family)
        lora_tables = "".join(
            f'[loras.{name}]\npath = "{path}"\ntrigger = "{name} look"\n\n' for name, path in (loras or {}).items()
        )
        text = (
            f'[defaults]\nmodel = "{MODEL}"\n\n'
            f'[models.{MODEL}]\nfamily = "{family}"\npath = "{model_dir}"\ndtype = "float32"\n\n{lora_tables}'
        )
        settings = Settings(
            catalog=write_catalog(root, text),
            device="cpu",
            storage_url=f"file://{root / 'outputs'}",
            data_dir=root / "data",
        )
        return build_runtime(settings)

    return factory


def completed_video(result: JobResult) -> np.ndarray:
    """Decode a completed job's MP4 and check it has exactly the frames and size the result reports."""
    assert result.status == JobStatus.COMPLETED, result.error_message
    _, frames = decode_mp4(path_of(result.url or ""))
    assert frames.shape == (result.num_frames, result.height, result.width, 3)
    return frames


@pytest.fixture
def video_of() -> Callable[[JobResult], np.ndarray]:
    return completed_video
