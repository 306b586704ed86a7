"""pixsim7 as an operator runs it, in miniature: a copy of the stand-in of pixsim7's modules (standin/, written from
pixsim7's code) with the plugin folder copied to `pixsim7/backend/main/providers/npc_video/`, importable as the
`pixsim7` package for these tests only; the plugin loaded through pixsim7's registry with its settings in the
environment, as pixsim7's processes would have them; a real redis-server and a real worker
(tests/worker/conftest.py)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.redis_server import RedisServer
from tests.worker.conftest import redis_client, start_worker

__all__ = ["redis_client", "start_worker"]

REPO = Path(__file__).resolve().parents[3]
STANDIN = Path(__file__).resolve().parent / "standin" / "pixsim7"
PLUGIN = REPO / "integrations" / "pixsim7" / "npc_video"
PLUGIN_MODULE = "pixsim7.backend.main.providers.npc_video"


@pytest.fixture(scope="session")
def pixsim7_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The stand-in with the plugin copied in, first on sys.path; removed (and its modules forgotten) afterwards."""
    root = tmp_path_factory.mktemp("pixsim7-backend")
    shutil.copytree(STANDIN, root / "pixsim7")
    shutil.copytree(PLUGIN, root / "pixsim7" / "backend" / "main" / "providers" / "npc_video")
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [name for name in sys.modules if name == "pixsim7" or name.startswith("pixsim7.")]:
        del sys.modules[name]


@pytest.fixture
def load_plugin(pixsim7_tree: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`load_plugin(**environment)`: a fresh pixsim7 process's view of the plugin: the environment set
    (NPC_VIDEO_REDIS_URL defaults to the test Redis), the plugin imported anew through pixsim7's registry; the
    registered provider returned."""
    from pixsim7.backend.main.domain.providers.registry import load_provider_plugin, registry

    def load(**environment: str | None) -> Any:
        values: dict[str, str | None] = {"NPC_VIDEO_REDIS_URL": redis_server.url, "NPC_VIDEO_PREFIX": None}
        values.update(environment)
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        for name in [name for name in sys.modules if name.startswith(PLUGIN_MODULE)]:
            del sys.modules[name]
        registry.clear()
        assert load_provider_plugin("npc_video"), "pixsim7's registry did not load the plugin (see the log)"
        return registry.get("npc-video")

    return load
