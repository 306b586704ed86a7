"""LocalStorage: atomic writes under a root, file:// URLs, storage_error on write failures."""

from __future__ import annotations

import functools
import os
import threading
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from tests.support.video import path_of
from worker.settings import Settings
from worker.storage import open_storage
from worker.storage.local import LocalStorage

KEY = "npc-7/ab/abcdef.mp4"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "video.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    return path


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "outputs")


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.name.startswith(".partial-")] if root.exists() else []


def test_put_then_exists_and_url(storage, source):
    assert not storage.exists(KEY)
    storage.put(KEY, source, "video/mp4")
    assert storage.exists(KEY)
    url = storage.url(KEY)
    assert url.startswith("file:///")
    stored = path_of(url)
    assert stored == (storage.root / KEY).resolve()
    assert stored.read_bytes() == source.read_bytes()
    assert source.exists()  # copied, not moved


def test_put_overwrites_atomically_and_leaves_no_partials(storage, source, tmp_path):
    storage.put(KEY, source, "video/mp4")
    newer = tmp_path / "newer.mp4"
    newer.write_bytes(b"second version")
    storage.put(KEY, newer, "video/mp4")
    assert path_of(storage.url(KEY)).read_bytes() == b"second version"
    assert leftovers(storage.root) == []
    assert sorted(path.name for path in (storage.root / "npc-7" / "ab").iterdir()) == ["abcdef.mp4"]


def test_url_with_special_characters_round_trips(storage, source):
    key = "npc with space/ab/x#y%.mp4"
    storage.put(key, source, "video/mp4")
    assert path_of(storage.url(key)).read_bytes() == source.read_bytes()


def test_a_failed_copy_leaves_nothing_behind(storage, tmp_path):
    with pytest.raises(JobError) as caught:
        storage.put(KEY, tmp_path / "does-not-exist.mp4", "video/mp4")
    assert caught.value.code == ErrorCode.STORAGE_ERROR
    assert caught.value.retryable
    assert KEY in caught.value.message
    assert not storage.exists(KEY)
    assert leftovers(storage.root) == []


def test_a_failed_copy_keeps_the_previous_object(storage, source, tmp_path):
    storage.put(KEY, source, "video/mp4")
    before = path_of(storage.url(KEY)).read_bytes()
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(JobError):
        storage.put(KEY, tmp_path / "a-folder", "video/mp4")
    assert path_of(storage.url(KEY)).read_bytes() == before
    assert leftovers(storage.root) == []


def test_an_interrupted_copy_leaves_nothing_behind(storage, source, monkeypatch):
    import shutil

    def explode(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfileobj", explode)
    with pytest.raises(KeyboardInterrupt):
        storage.put(KEY, source, "video/mp4")
    assert not storage.exists(KEY)
    assert leftovers(storage.root) == []


@pytest.mark.parametrize("key", ["../escape.mp4", "a/../../escape.mp4", "/etc/passwd", "a/../../../tmp/x"])
def test_keys_escaping_the_root_are_refused(storage, source, key):
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.put(key, source, "video/mp4")
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.exists(key)
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.url(key)
    assert not (storage.root.parent / "escape.mp4").exists()


def test_symlink_escaping_the_root_is_refused(storage, source, tmp_path):
    storage.root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (storage.root / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.put("link/x.mp4", source, "video/mp4")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_unwritable_root_is_a_storage_error(tmp_path, source, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    storage = LocalStorage(blocker / "outputs")
    with pytest.raises(JobError) as caught:
        storage.put(KEY, source, "video/mp4")
    assert caught.value.code == ErrorCode.STORAGE_ERROR
    assert caught.value.retryable
    assert caught.value.message == f"writing {KEY} to local storage failed: Not a directory"
    assert str(tmp_path) not in caught.value.message  # producers never learn the server's paths
    assert str(blocker / "outputs") in caplog.text  # the operator does


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_root_is_a_storage_error(tmp_path, source):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(JobError) as caught:
            LocalStorage(root).put(KEY, source, "video/mp4")
        assert caught.value.code == ErrorCode.STORAGE_ERROR
    finally:
        root.chmod(0o700)


# -- playable by others: modes and public URLs ------------------------------------------------------------


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_files_are_world_readable_and_new_folders_world_listable_whatever_the_umask(tmp_path, source):
    previous = os.umask(0o077)  # the strictest common umask: it must not narrow what players may read
    try:
        storage = LocalStorage(tmp_path / "outputs" / "clips")
        storage.check()
        storage.put(KEY, source, "video/mp4")
    finally:
        os.umask(previous)
    stored = path_of(storage.url(KEY))
    assert mode(stored) == 0o644
    for folder in (tmp_path / "outputs", storage.root, storage.root / "npc-7", stored.parent):
        assert mode(folder) == 0o755, folder


def test_folders_that_exist_keep_their_mode(tmp_path, source):
    root = tmp_path / "outputs"
    (root / "npc-7").mkdir(parents=True)
    (root / "npc-7").chmod(0o750)  # the operator's choice
    LocalStorage(root).put(KEY, source, "video/mp4")
    assert mode(root / "npc-7") == 0o750
    assert mode(root / "npc-7" / "ab") == 0o755
    assert mode(root / KEY) == 0o644


def test_a_public_base_url_gives_http_urls_with_the_key_quoted(tmp_path, source):
    storage = LocalStorage(tmp_path / "outputs", public_base_url="https://videos.example.com/npc/")
    storage.put(KEY, source, "video/mp4")
    assert storage.url(KEY) == "https://videos.example.com/npc/npc-7/ab/abcdef.mp4"
    assert (
        storage.url("npc with space/ab/x#y%.mp4") == "https://videos.example.com/npc/npc%20with%20space/ab/x%23y%25.mp4"
    )
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.url("../escape.mp4")


def test_the_setting_reaches_local_storage(tmp_path):
    settings = Settings(storage_url=f"file://{tmp_path / 'outputs'}", public_base_url="http://127.0.0.1:8000")
    assert open_storage(settings).url(KEY) == f"http://127.0.0.1:8000/{KEY}"
    assert open_storage(Settings(storage_url=f"file://{tmp_path / 'outputs'}")).url(KEY).startswith("file:///")


def test_a_web_server_in_front_of_the_folder_serves_the_urls(tmp_path, source):
    """What an operator sets up: any static file server on the storage folder, its address as the public base."""
    root = tmp_path / "outputs"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            storage = LocalStorage(root, public_base_url=f"http://127.0.0.1:{server.server_address[1]}")
            key = "npc with space/ab/x#y%.mp4"
            storage.put(key, source, "video/mp4")
            with urllib.request.urlopen(storage.url(key), timeout=5) as response:
                assert response.read() == source.read_bytes()
        finally:
            server.shutdown()
            thread.join(5)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No request lines on stderr."""
