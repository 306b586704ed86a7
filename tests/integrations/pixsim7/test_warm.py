"""The plugin warms an NPC's reactions (contract 1.2 section 3b): given the params of generations the game may create
later, it enqueues warm jobs with exactly the params those generations' jobs will have, so a later generation
through pixsim7's ProviderService is a cache hit of the warmed video; a reaction that is no job is refused before
anything is enqueued; Redis down is pixsim7's retryable unavailable error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from npc_video_client.names import Lane, StreamNames
from tests.integrations.pixsim7.support import NPC, account, canonical, generation, poll
from tests.support.jobs import png_bytes
from tests.support.redis_processes import free_port
from tests.support.waiting import wait_until

NAMES = StreamNames("npc")
REACTIONS = [{"expression": "surprised", "emotion": "startled"}, {"expression": "smiling", "emotion": "pleased"}]


def reactions() -> list[dict[str, Any]]:
    """Two generations the game would create when the player talks to Mira, her picture an asset of user 3."""
    return [canonical(npc={**NPC, **reaction}, composition_assets=["asset:42"]) for reaction in REACTIONS]


def assets(tmp_path: Path) -> Any:
    from pixsim7.backend.main.domain.providers.execution.file_resolver import Asset, AssetTable

    picture = tmp_path / "mira.png"
    picture.write_bytes(png_bytes())
    return AssetTable({42: Asset(id=42, user_id=3, local_path=str(picture))})


def resolver(table: Any) -> Any:
    """resolve_source_fn bound to pixsim7's resolver and database session, as ProviderService binds it."""
    from pixsim7.backend.main.domain.providers.execution.file_resolver import resolve_source_to_local_file

    async def resolve(source: Any, user_id: int, default_suffix: str) -> tuple[str, list[str]]:
        return await resolve_source_to_local_file(
            source=source, user_id=user_id, default_suffix=default_suffix, db_session=table
        )

    return resolve


def test_warmed_reactions_make_the_later_generation_a_cache_hit(load_plugin, start_worker, redis_client, tmp_path):
    from pixsim7.backend.main.domain import ProviderStatus
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    provider = load_plugin()
    table = assets(tmp_path)
    resolve = resolver(table)

    async def warm() -> tuple[list[str], int]:
        ids = await provider.warm(reactions(), user_id=3, resolve_source_fn=resolve)
        again = await provider.warm(reactions(), user_id=3, resolve_source_fn=resolve)  # harmless: the same ids
        assert again == ids
        return ids, (await provider.warm_status(reactions(), user_id=3, resolve_source_fn=resolve)).ready_count

    ids, ready_before = asyncio.run(warm())
    assert len(set(ids)) == 2 and all(job_id.startswith("warm-") for job_id in ids)
    assert ready_before == 0 and redis_client.xlen(NAMES.lane(Lane.WARM)) == 4
    queued = json.loads(redis_client.xrange(NAMES.lane(Lane.WARM))[0][1][b"job"])
    assert queued["params"]["npc_base_image"].startswith("data:image/png;base64,")  # the asset, as a job carries it

    start_worker()

    def all_ready() -> bool:
        status = asyncio.run(provider.warm_status(reactions(), user_id=3, resolve_source_fn=resolve))
        return status.ready_count == 2

    wait_until(all_ready, timeout_s=120, interval_s=0.2, what="both reactions warmed")

    async def later_generation() -> tuple[Any, list[Any]]:
        svc = ProviderService(table)
        run = generation(reactions()[1], generation_id=4712)
        submission = await svc.execute_generation(run, account(), run.canonical_params)
        return submission, await poll(svc, submission)

    submission, seen = asyncio.run(later_generation())
    assert seen[-1].status == ProviderStatus.COMPLETED
    result = json.loads(redis_client.get(NAMES.result(submission.provider_job_id)))
    assert result["cache_hit"] is True, result  # the warmed video, not a second generation
    assert len(list((tmp_path / "outputs").rglob("*.mp4"))) == 2  # one per warmed reaction, none added


def test_a_reaction_that_is_no_job_is_refused_before_anything_is_enqueued(load_plugin, redis_client, tmp_path):
    from pixsim7.backend.main.services.provider.base import ProviderError

    provider = load_plugin()
    bad = [reactions()[0], canonical(npc={**NPC, "intensity": 7})]

    with pytest.raises(ProviderError) as refused:
        asyncio.run(provider.warm(bad, user_id=3, resolve_source_fn=resolver(assets(tmp_path))))
    assert (refused.value.retryable, refused.value.error_code) == (False, "param_invalid")
    assert "intensity" in str(refused.value)
    assert redis_client.xlen(NAMES.lane(Lane.WARM)) == 0


def test_warming_with_redis_down_is_a_retryable_unavailable_provider_error(load_plugin, tmp_path):
    from pixsim7.backend.main.services.provider.base import ProviderError

    provider = load_plugin(NPC_VIDEO_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    resolve = resolver(assets(tmp_path))
    for call in (provider.warm, provider.warm_status, provider.warm_cancel):
        with pytest.raises(ProviderError) as caught:
            asyncio.run(call(reactions(), user_id=3, resolve_source_fn=resolve))
        assert (caught.value.retryable, caught.value.error_code) == (True, "provider_unavailable")


def test_cancelling_warmed_reactions_sets_the_cancel_of_each_warm_job(load_plugin, redis_client, tmp_path):
    """The NPC left the scene: its warm jobs' cancel keys are set (the worker then drops them, tests/worker/
    test_warm.py), and warming the same reactions again withdraws them."""
    provider = load_plugin()
    resolve = resolver(assets(tmp_path))

    async def leave_and_come_back() -> tuple[list[str], list[str], list[int], list[str]]:
        ids = await provider.warm(reactions(), user_id=3, resolve_source_fn=resolve)
        cancelled = await provider.warm_cancel(reactions(), user_id=3, resolve_source_fn=resolve)
        ttls = [redis_client.ttl(NAMES.cancel(job_id)) for job_id in ids]
        return ids, cancelled, ttls, await provider.warm(reactions(), user_id=3, resolve_source_fn=resolve)

    ids, cancelled, ttls, again = asyncio.run(leave_and_come_back())
    assert cancelled == ids == again and all(ttl > 0 for ttl in ttls)
    assert [redis_client.exists(NAMES.cancel(job_id)) for job_id in ids] == [0, 0]
