"""Generations through pixsim7's ProviderService (the stand-in of it) and the plugin, against a real worker and a real
redis-server: completed with a fetchable clip, failed on a bad image with the worker's message, cancelled, retried as
a new job (not the stored outcome), an unknown job id, pixsim7's own decode_responses Redis client, Redis down."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from npc_video_client.contract import JobState, JobStateStatus
from npc_video_client.names import StreamNames
from tests.integrations.pixsim7.support import NOT_AN_IMAGE, account, canonical, generation, poll
from tests.support.jobs import png_bytes
from tests.support.redis_processes import free_port
from tests.support.waiting import wait_until

NAMES = StreamNames("npc")
PUBLIC = "https://videos.example.test/npc"  # the worker's NPC_WORKER_PUBLIC_BASE_URL: playable http(s) URLs


def service() -> Any:
    from pixsim7.backend.main.domain.providers.execution.file_resolver import AssetTable
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    return ProviderService(AssetTable())


async def run_generation(params: dict[str, Any], **fields: Any) -> tuple[Any, Any, list[Any]]:
    """execute, then poll as pixsim7's status poller does: (generation, submission, every status seen)."""
    svc = service()
    run = generation(params, **fields)
    submission = await svc.execute_generation(run, account(), run.canonical_params)
    return run, submission, await poll(svc, submission)


def test_a_generation_completes_with_a_fetchable_clip(load_plugin, start_worker, redis_client, tmp_path):
    from pixsim7.backend.main.domain import ProviderStatus

    load_plugin()
    start_worker(public_base_url=PUBLIC)
    _run, submission, seen = asyncio.run(run_generation(canonical(), priority=9))
    job_id = submission.provider_job_id
    assert job_id.startswith("pixsim7-4711-") and submission.status == "success"
    metadata = submission.response["metadata"]
    assert (metadata["npc_job_id"], metadata["lane"]) == (job_id, "high")  # priority 9
    done = seen[-1]
    assert done.status == ProviderStatus.COMPLETED and done.progress == 1.0 and done.error_message is None
    assert done.video_url.startswith(f"{PUBLIC}/npc-7/") and done.video_url.endswith(".mp4")
    assert done.thumbnail_url.startswith(f"{PUBLIC}/npc-7/")
    assert done.has_retrievable_media_url and done.provider_video_id == job_id
    assert (done.width, done.height) == (64, 64) and done.duration_sec > 0
    clip = tmp_path / "outputs" / done.video_url.removeprefix(f"{PUBLIC}/")
    assert clip.read_bytes()[4:8] == b"ftyp"  # the file behind the URL: what a web server on the folder serves
    assert submission.response["status"] == "completed" and submission.response["video_url"] == done.video_url
    assert submission.response["metadata"]["has_retrievable_media_url"] is True
    stored = json.loads(redis_client.get(NAMES.result(job_id)))
    assert stored["metadata"] == {"generation_id": 4711, "user_id": 3}  # the generation id travels with the job
    assert all(status.status in (ProviderStatus.PENDING, ProviderStatus.PROCESSING) for status in seen[:-1])


def test_pixsim7_sees_the_progress_rise_while_the_worker_runs(load_plugin, start_worker):
    from pixsim7.backend.main.domain import ProviderStatus

    load_plugin()
    start_worker(public_base_url=PUBLIC)
    params = canonical(npc={**canonical()["npc_params"], "steps": 30, "width": 32, "height": 32})
    _run, _submission, seen = asyncio.run(run_generation(params))
    running = [status.progress for status in seen if status.status == ProviderStatus.PROCESSING]
    assert len(running) >= 2 and running == sorted(running) and running[0] < running[-1] <= 1
    assert seen[-1].status == ProviderStatus.COMPLETED


def test_a_bad_image_fails_with_the_workers_message(load_plugin, start_worker):
    from pixsim7.backend.main.domain import ProviderStatus

    load_plugin()
    start_worker()
    _run, submission, seen = asyncio.run(run_generation(canonical(image=NOT_AN_IMAGE)))
    failed = seen[-1]
    assert failed.status == ProviderStatus.FAILED and failed.video_url is None
    assert failed.error_message.startswith("base image cannot be decoded as an image")
    assert failed.metadata["error_code"] == "invalid_image" and failed.metadata["npc_status"] == "failed"
    assert submission.response["error_message"] == failed.error_message


def test_an_asset_whose_file_is_no_image_fails_naming_what_it_is(load_plugin, start_worker, tmp_path):
    """pixsim7's resolver hands over the asset's bytes; bytes of no image format go as application/octet-stream,
    which the worker refuses by that type (the path an operator's broken asset takes)."""
    from pixsim7.backend.main.domain import ProviderStatus
    from pixsim7.backend.main.domain.providers.execution.file_resolver import Asset, AssetTable
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    load_plugin()
    start_worker()
    broken = tmp_path / "mira.png"
    broken.write_bytes(b"this is not an image")
    svc = ProviderService(AssetTable({42: Asset(id=42, user_id=3, local_path=str(broken))}))
    run = generation(canonical(composition_assets=[42]))
    submission = asyncio.run(svc.execute_generation(run, account(), run.canonical_params))
    failed = asyncio.run(poll(svc, submission))[-1]
    assert failed.status == ProviderStatus.FAILED and failed.metadata["error_code"] == "invalid_image"
    assert 'media type "application/octet-stream"; expected image/*' in failed.error_message


def test_the_workers_message_for_a_bad_image_holds_no_python_repr(load_plugin, start_worker):
    load_plugin()
    start_worker()
    _run, _submission, seen = asyncio.run(run_generation(canonical(image=NOT_AN_IMAGE)))
    assert " object at 0x" not in seen[-1].error_message


def test_cancel_stops_a_running_job(load_plugin, start_worker, redis_client):
    from pixsim7.backend.main.domain import ProviderStatus

    load_plugin()
    start_worker()
    params = canonical(npc={**canonical()["npc_params"], "steps": 200, "width": 32, "height": 32})

    async def scenario() -> tuple[bool, bool, list[Any]]:
        svc = service()
        run = generation(params)
        submission = await svc.execute_generation(run, account(), run.canonical_params)
        running = NAMES.running(submission.provider_job_id)
        await asyncio.to_thread(wait_until, lambda: redis_client.exists(running), 60, 0.02, "the worker to take it")
        cancelled = await svc.cancel_job(submission, account())
        seen = await poll(svc, submission)
        return cancelled, await svc.cancel_job(submission, account()), seen

    cancelled, again, seen = asyncio.run(scenario())
    assert cancelled is True and again is False  # the second: it had already ended
    assert seen[-1].status == ProviderStatus.CANCELLED and "cancelled" in seen[-1].error_message


def test_a_retry_is_a_new_job_with_the_cached_params_not_the_stored_outcome(load_plugin, start_worker, tmp_path):
    """The first run is cancelled before any worker runs it; pixsim7 then retries the generation (retry_count + 1,
    its resolved_params executed again, the asset's file since deleted): a new job, which completes."""
    from pixsim7.backend.main.domain import ProviderStatus
    from pixsim7.backend.main.domain.providers.execution.file_resolver import Asset, AssetTable
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    load_plugin()
    picture = tmp_path / "mira.png"
    picture.write_bytes(png_bytes())
    svc = ProviderService(AssetTable({42: Asset(id=42, user_id=3, local_path=str(picture))}))
    run = generation(canonical(composition_assets=["asset:42"]))

    async def first_attempt() -> tuple[Any, Any]:
        submission = await svc.execute_generation(run, account(), run.canonical_params)
        assert await svc.cancel_job(submission, account()) is True  # queued: it ends cancelled when taken
        return submission, None

    first, _ = asyncio.run(first_attempt())
    picture.unlink()  # a retry must not need the asset again: pixsim7 executes the cached resolved_params
    start_worker()

    async def retry() -> tuple[list[Any], Any, list[Any]]:
        ended = await poll(svc, first)
        run.retry_count += 1
        second = await svc.execute_generation(run, account(), run.canonical_params)
        return ended, second, await poll(svc, second)

    ended, second, seen = asyncio.run(retry())
    assert ended[-1].status == ProviderStatus.CANCELLED
    assert second.provider_job_id != first.provider_job_id and second.retry_attempt == 1
    assert second.payload is run.resolved_params
    assert seen[-1].status == ProviderStatus.COMPLETED


def test_an_unknown_job_id_is_pixsim7s_job_not_found(load_plugin):
    from pixsim7.backend.main.domain.providers import ProviderSubmission
    from pixsim7.backend.main.services.provider.base import JobNotFoundError

    provider = load_plugin()

    async def scenario() -> bool:
        with pytest.raises(JobNotFoundError, match="Job 'pixsim7-1-nope' not found on provider 'npc-video'"):
            await provider.check_status(account=account(), provider_job_id="pixsim7-1-nope")
        from datetime import UTC, datetime

        submission = ProviderSubmission(1, 1, "npc-video", {}, 0, datetime.now(UTC), provider_job_id="pixsim7-1-nope")
        with pytest.raises(JobNotFoundError):
            await service().check_status(submission, account())
        return bool(await provider.cancel(account=account(), provider_job_id="pixsim7-1-nope"))

    assert asyncio.run(scenario()) is False


def test_pixsim7s_own_redis_client_with_decode_responses_carries_a_generation(
    load_plugin, start_worker, redis_server, monkeypatch, redis_client
):
    """NPC_VIDEO_REDIS_URL unset: the plugin uses pixsim7's get_redis() client (decode_responses=True)."""
    from pixsim7.backend.main.domain import ProviderStatus
    from pixsim7.backend.main.shared.config import settings

    monkeypatch.setattr(settings, "redis_url", redis_server.url)
    provider = load_plugin(NPC_VIDEO_REDIS_URL=None)
    start_worker()

    async def scenario() -> list[Any]:
        from pixsim7.backend.main.infrastructure.redis import close_redis, get_redis

        try:
            seen = await run_generation(canonical())
            client = await provider._client()
            assert client.redis is await get_redis() and client.redis.get_encoder().decode_responses
            return seen[2]
        finally:
            await close_redis()

    seen = asyncio.run(scenario())
    assert seen[-1].status == ProviderStatus.COMPLETED
    (key,) = list(redis_client.scan_iter(NAMES.state("pixsim7-4711-*")))
    state = JobState.model_validate_json(redis_client.get(key))  # the queued state went through the decoding client
    assert state.status in {JobStateStatus.QUEUED, JobStateStatus.COMPLETED}  # COMPLETED once the worker writes it


def test_redis_down_is_a_retryable_unavailable_provider_error(load_plugin):
    from pixsim7.backend.main.services.provider.base import ProviderError

    down = f"redis://127.0.0.1:{free_port()}/0"
    provider = load_plugin(NPC_VIDEO_REDIS_URL=down)

    async def scenario() -> list[ProviderError]:
        errors = []
        for call in (
            lambda: service().execute_generation(generation(canonical()), account(), canonical()),
            lambda: provider.check_status(account=account(), provider_job_id="pixsim7-1-x"),
            lambda: provider.cancel(account=account(), provider_job_id="pixsim7-1-x"),
        ):
            with pytest.raises(ProviderError) as caught:
                await call()
            errors.append(caught.value)
        return errors

    for error in asyncio.run(scenario()):
        assert (error.retryable, error.error_code) == (True, "provider_unavailable")
        assert str(error).startswith(f"Redis at {down} is unreachable: ")
