"""The plugin as pixsim7 loads it: discovered in the providers folder, its manifest attached, registered as a video
provider without credentials; its settings come from the environment, and a bad one keeps it from loading."""

from __future__ import annotations

import logging


def test_pixsim7s_registry_discovers_loads_and_registers_the_plugin(load_plugin):
    from pixsim7.backend.main.domain import OperationType
    from pixsim7.backend.main.domain.providers.registry import registry
    from pixsim7.backend.main.domain.providers.registry.provider_registry import discover_providers
    from pixsim7.backend.main.domain.providers.schemas import ProviderKind
    from pixsim7.backend.main.services.provider.base import Provider

    assert "npc_video" in discover_providers()
    provider = load_plugin()
    assert isinstance(provider, Provider) and registry.list_provider_ids() == ["npc-video"]
    assert provider.provider_id == "npc-video" and provider.supported_operations == [OperationType.IMAGE_TO_VIDEO]
    manifest = provider.get_manifest()
    assert (manifest.id, manifest.kind, manifest.requires_credentials) == ("npc-video", ProviderKind.VIDEO, False)
    assert provider.requires_file_preparation()


def test_the_settings_come_from_the_environment(load_plugin, redis_server):
    provider = load_plugin(NPC_VIDEO_PREFIX="{game}")
    assert (provider.settings.redis_url, provider.settings.prefix) == (redis_server.url, "{game}")
    assert load_plugin(NPC_VIDEO_REDIS_URL=None).settings.redis_url is None  # pixsim7's own Redis
    assert load_plugin(NPC_VIDEO_REDIS_URL=None).settings.describe() == "jobs on pixsim7's Redis, prefix npc"


def test_a_bad_setting_keeps_the_plugin_out_with_a_log_line_naming_it(pixsim7_tree, monkeypatch, caplog):
    import sys

    from pixsim7.backend.main.domain.providers.registry import load_provider_plugin, registry

    registry.clear()
    for name in [name for name in sys.modules if name.startswith("pixsim7.backend.main.providers.npc_video")]:
        del sys.modules[name]
    monkeypatch.setenv("NPC_VIDEO_REDIS_URL", "http://redis.internal:6379")
    with caplog.at_level(logging.ERROR):
        assert not load_provider_plugin("npc_video")
    assert "NPC_VIDEO_REDIS_URL must be a redis://, rediss:// or unix:// URL" in caplog.text
    assert registry.list_provider_ids() == []
