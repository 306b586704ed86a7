"""map_parameters: the NPC job's params from a generation's canonical params (npc_params over pixsim7's generic
fields), checked before anything is enqueued; the base image's source; pixsim7's 0-10 priority as a lane."""

from __future__ import annotations

import pytest

from npc_video_client.names import Lane
from tests.integrations.pixsim7.support import NPC, canonical


@pytest.fixture
def provider(load_plugin):
    return load_plugin()


def image_to_video():
    from pixsim7.backend.main.domain import OperationType

    return OperationType.IMAGE_TO_VIDEO


def test_npc_params_win_over_pixsim7s_generic_fields_which_fill_the_rest(provider):
    params = canonical(npc=NPC | {"seed": 11}, seed=99, negative_prompt="blurry", duration=2.5)
    mapped = provider.map_parameters(image_to_video(), params)
    assert mapped["npc_params"] == NPC | {
        "seed": 11, "prompt": "Mira, the tavern keeper", "negative_prompt": "blurry", "duration": 1.0,
    }  # fmt: skip
    assert mapped["base_image_source"] == params["composition_assets"][0]["url"]


def test_fields_of_a_newer_contract_are_passed_on_unchanged(provider):
    mapped = provider.map_parameters(image_to_video(), canonical(npc=NPC | {"mouth_shape": "o"}))
    assert mapped["npc_params"]["mouth_shape"] == "o"


def test_the_base_image_source_is_npc_base_image_else_the_first_image_asset(provider):
    assets = [
        {"asset": "asset:5", "media_type": "video"},
        {"asset": 42, "media_type": "image"},
        {"url": "https://cdn.example/b.png"},
    ]
    assert provider.map_parameters(image_to_video(), canonical(composition_assets=assets))["base_image_source"] == (
        "asset:42"
    )
    explicit = canonical(npc=NPC | {"npc_base_image": "s3://npcs/mira.png"}, composition_assets=assets)
    assert provider.map_parameters(image_to_video(), explicit)["base_image_source"] == "s3://npcs/mira.png"
    assert provider.map_parameters(image_to_video(), canonical(composition_assets=[]))["base_image_source"] is None


def test_without_npc_params_it_says_where_they_go_and_that_the_patch_keeps_them(provider):
    from pixsim7.backend.main.services.provider.base import ProviderError

    params = canonical()
    del params["npc_params"]
    with pytest.raises(ProviderError) as caught:
        provider.map_parameters(image_to_video(), params)
    assert "config.npc_params" in str(caught.value) and "integrations/pixsim7/*.patch" in str(caught.value)
    assert (caught.value.retryable, caught.value.error_code) == (False, "param_missing")


def test_invalid_npc_params_are_refused_naming_each_problem(provider):
    from pixsim7.backend.main.services.provider.base import ProviderError

    with pytest.raises(ProviderError) as caught:
        provider.map_parameters(image_to_video(), canonical(npc=NPC | {"intensity": 1.5, "quality_preset": "ultra"}))
    message = str(caught.value)
    assert (
        message.startswith("npc_params: ") and "intensity: Input should be less than or equal to 1 (got 1.5)" in message
    )
    assert "quality_preset: Input should be" in message and '(got "ultra")' in message
    assert (caught.value.retryable, caught.value.error_code) == (False, "param_invalid")


def test_only_image_to_video_is_supported(provider):
    from pixsim7.backend.main.domain import OperationType
    from pixsim7.backend.main.services.provider.base import UnsupportedOperationError

    with pytest.raises(UnsupportedOperationError, match="does not support operation 'text_to_video'"):
        provider.map_parameters(OperationType.TEXT_TO_VIDEO, canonical())


@pytest.mark.parametrize(
    ("priority", "lane"),
    [(0, Lane.LOW), (2, Lane.LOW), (3, Lane.NORMAL), (5, Lane.NORMAL), (7, Lane.NORMAL), (8, Lane.HIGH),
     (10, Lane.HIGH), (None, Lane.NORMAL)],
)  # fmt: skip
def test_pixsim7s_priorities_map_to_lanes(load_plugin, priority, lane):
    load_plugin()
    from pixsim7.backend.main.providers.npc_video.mapping import lane_for

    assert lane_for(priority) == lane


@pytest.mark.parametrize("priority", [-1, 11, 5.0, True])
def test_a_priority_outside_pixsim7s_range_is_refused(load_plugin, priority):
    load_plugin()
    from pixsim7.backend.main.providers.npc_video.mapping import lane_for
    from pixsim7.backend.main.services.provider.base import ProviderError

    with pytest.raises(ProviderError, match=r"generation priority must be an integer 0..10 \(pixsim7's range\)"):
        lane_for(priority)
