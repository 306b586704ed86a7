"""The check while the VAE decodes (pipelines.decode_checks) on the real tiny Wan pipeline: it runs once per latent
frame, and inside a chunk as often as its interval allows; raising from it stops the decode there, a call without it
is unchanged, and the next call after a stopped decode gives the same frames as before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from npc_video_client.contract import JobEnvelope
from pipelines import decode_checks
from pipelines.runner import run_pipeline
from tests.support.jobs import envelope
from worker.job import PreparedJob, SilentHooks
from worker.runtime import Runtime


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def runner(model_dir: Callable[..., Path], family_runner: Callable[..., Runtime]) -> Runtime:
    return family_runner("wan-i2v", model_dir("wan-i2v"))


def _prepared(runner: Runtime) -> PreparedJob:
    document = envelope("decode", steps=2, duration=0.5, seed=5)
    return runner.preparer.prepare(JobEnvelope.model_validate(document), SilentHooks())


def _run(runner: Runtime, between: Callable[[], None] | None) -> Any:
    prepared = _prepared(runner)
    loaded = runner.pool.get(prepared.request.model)
    return run_pipeline(
        loaded.pipe,
        loaded.family,
        prepared.request,
        prepared.image,
        lambda _step, _total: None,
        between_decode_chunks=between,
    )


def test_the_check_runs_before_every_chunk_and_changes_nothing(runner: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setattr(decode_checks, "INTRA_CHUNK_INTERVAL_S", float("inf"))  # at the chunks only
    plain = _run(runner, None)
    chunks: list[int] = []
    checked = _run(runner, lambda: chunks.append(1))
    latent_frames = (plain.shape[0] - 1) // 4 + 1  # Wan's VAE: 4 frames per latent frame after the first
    assert len(chunks) == latent_frames >= 3
    np.testing.assert_array_equal(checked, plain)


def test_raising_from_the_check_stops_the_decode_and_the_next_call_is_whole(runner: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setattr(decode_checks, "INTRA_CHUNK_INTERVAL_S", float("inf"))
    plain = _run(runner, None)
    chunks: list[int] = []

    def stop_at_the_second() -> None:
        chunks.append(1)
        if len(chunks) == 2:
            raise Stop

    with pytest.raises(Stop):
        _run(runner, stop_at_the_second)
    assert len(chunks) == 2  # stopped inside the decode, one chunk decoded
    np.testing.assert_array_equal(_run(runner, None), plain)  # the VAE's chunk cache starts afresh


def test_inside_a_chunk_the_check_runs_between_the_decoders_layers(runner: Runtime, monkeypatch: Any) -> None:
    """With no interval, before every layer the decoder calls: raising from one inside the first chunk stops the
    decode there, before its second chunk, and the next call is whole."""
    monkeypatch.setattr(decode_checks, "INTRA_CHUNK_INTERVAL_S", 0.0)
    plain = _run(runner, None)
    checks: list[int] = []
    _run(runner, lambda: checks.append(1))
    latent_frames = (plain.shape[0] - 1) // 4 + 1
    assert len(checks) > 10 * latent_frames  # every layer of every chunk
    per_chunk = len(checks) // latent_frames
    seen: list[int] = []

    def stop_inside_the_first_chunk() -> None:
        seen.append(1)
        if len(seen) == per_chunk // 2:
            raise Stop

    with pytest.raises(Stop):
        _run(runner, stop_inside_the_first_chunk)
    np.testing.assert_array_equal(_run(runner, None), plain)
