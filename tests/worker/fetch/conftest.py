"""Fetch tests: a scripted local image server, a real S3 server, and no downloads cached across tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.image_server import ImageServer, serve_images
from tests.support.seaweed import s3_env, seaweed
from worker.fetch import recent_downloads

__all__ = ["image_server", "s3_env", "seaweed"]


@pytest.fixture(autouse=True)
def _fresh_download_cache() -> Iterator[None]:
    recent_downloads.clear()
    yield
    recent_downloads.clear()


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    with serve_images() as server:
        yield server
