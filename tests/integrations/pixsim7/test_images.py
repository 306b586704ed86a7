"""The base image through pixsim7's own preparation step (ProviderService.execute_generation with its
resolve_source_fn): URLs the workers fetch pass unchanged, a pixsim7 asset is resolved by pixsim7's resolver (its
local file, or its remote URL downloaded) and sent inline; temporary downloads are deleted; an asset of another user,
or one too large, is refused before anything is enqueued."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
from typing import Any

import pytest

from npc_video_client.names import StreamNames
from tests.integrations.pixsim7.support import account, canonical, generation
from tests.support.image_server import Route, serve_images
from tests.support.jobs import png_bytes

NAMES = StreamNames("npc")


def assets(**rows: Any) -> Any:
    from pixsim7.backend.main.domain.providers.execution.file_resolver import Asset, AssetTable

    return AssetTable(
        {int(key.removeprefix("a")): Asset(id=int(key.removeprefix("a")), **row) for key, row in rows.items()}
    )


def submitted_base_image(redis_client, lane: str = "normal") -> str:
    ((_entry, fields),) = redis_client.xrange(NAMES.lane(lane))
    return str(json.loads(fields[b"job"])["params"]["npc_base_image"])


def execute(table: Any, params: dict[str, Any]) -> Any:
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    run = generation(params)
    asyncio.run(ProviderService(table).execute_generation(run, account(), run.canonical_params))
    return run


def test_urls_the_workers_fetch_pass_unchanged(load_plugin, redis_client):
    load_plugin()
    execute(assets(), canonical(image="https://assets.pixsim7.example/npc/mira.png"))
    assert submitted_base_image(redis_client) == "https://assets.pixsim7.example/npc/mira.png"


def test_an_asset_with_a_local_file_is_sent_inline(load_plugin, redis_client, tmp_path):
    load_plugin()
    picture = tmp_path / "mira.png"
    picture.write_bytes(png_bytes())
    run = execute(assets(a42={"user_id": 3, "local_path": str(picture)}), canonical(composition_assets=[42]))
    sent = submitted_base_image(redis_client)
    assert sent.startswith("data:image/png;base64,") and base64.b64decode(sent.split(",", 1)[1]) == png_bytes()
    assert run.resolved_params["npc_params"]["npc_base_image"] == sent  # what pixsim7 keeps for the retries
    assert picture.exists()  # the asset's own file is not ours to delete


def test_an_asset_only_remote_is_downloaded_by_pixsim7_and_the_download_deleted(
    load_plugin, redis_client, tmp_path, monkeypatch
):
    load_plugin()
    downloads = tmp_path / "downloads"  # where pixsim7's resolver writes its temporary files
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 64
    with serve_images() as server:
        server.routes["/a.jpg"] = Route(body=jpeg, content_type="image/jpeg")
        execute(
            assets(a7={"user_id": 3, "remote_url": server.url("/a.jpg")}), canonical(composition_assets=["asset:7"])
        )
    assert [seen.path for seen in server.requests] == ["/a.jpg"]
    assert submitted_base_image(redis_client) == "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert list(downloads.iterdir()) == []


def test_another_users_asset_is_refused_and_nothing_is_enqueued(load_plugin, redis_client, tmp_path):
    from pixsim7.backend.main.services.provider.base import ProviderError

    load_plugin()
    picture = tmp_path / "theirs.png"
    picture.write_bytes(png_bytes())
    with pytest.raises(ProviderError, match="Asset 9 not found for user"):
        execute(assets(a9={"user_id": 99, "local_path": str(picture)}), canonical(composition_assets=["asset:9"]))
    assert not redis_client.exists(NAMES.lane("normal"))


def test_an_image_over_the_workers_limit_is_refused_before_it_is_inlined(load_plugin, redis_client, tmp_path):
    from pixsim7.backend.main.services.provider.base import ProviderError

    load_plugin()
    huge = tmp_path / "huge.png"
    with huge.open("wb") as out:
        out.truncate(20 * 1024 * 1024 + 1)
    with pytest.raises(ProviderError, match=r"base image asset:8 is 20971521 bytes, over the 20971520") as caught:
        execute(assets(a8={"user_id": 3, "local_path": str(huge)}), canonical(composition_assets=["asset:8"]))
    assert caught.value.retryable is False and not redis_client.exists(NAMES.lane("normal"))
