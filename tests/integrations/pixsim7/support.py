"""What the plugin's tests share: pixsim7's objects as its services hand them to a provider, and a status poller.

pixsim7's modules are importable only inside the `pixsim7_tree` fixture (conftest.py), so they are imported in the
functions here, not at the top."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.jobs import data_uri, png_bytes
from tests.support.jobs import params as job_params

NPC = job_params(npc_base_image=None)  # the base image comes from composition_assets or the test
NOT_AN_IMAGE = data_uri(b"this is not an image", mime="image/png")


def canonical(npc: dict[str, Any] | None = None, image: str | None = None, **generic: Any) -> dict[str, Any]:
    """canonical_params as pixsim7's patched canonicalize_params leaves them for an image_to_video generation."""
    params: dict[str, Any] = {
        "prompt": "Mira, the tavern keeper",
        "npc_params": dict(NPC if npc is None else npc),
        "composition_assets": [{"url": image or data_uri(png_bytes()), "media_type": "image", "role": "source_image"}],
    }
    return params | generic


def generation(params: dict[str, Any], generation_id: int | None = 4711, priority: int = 5) -> Any:
    from pixsim7.backend.main.domain import Generation, OperationType

    return Generation(
        id=generation_id,
        user_id=3,
        operation_type=OperationType.IMAGE_TO_VIDEO,
        provider_id="npc-video",
        canonical_params=params,
        priority=priority,
    )


def account() -> Any:
    """pixsim7's shared account for providers without credentials (AccountService._accountless_email)."""
    from pixsim7.backend.main.domain.providers import ProviderAccount

    return ProviderAccount(
        id=1,
        provider_id="npc-video",
        email="accountless+npc-video@pixsim.local",
        provider_metadata={"accountless": True},
    )


async def poll(service: Any, submission: Any, timeout_s: float = 120, every_s: float = 0.02) -> list[Any]:
    """Every status pixsim7's poller would have seen, as ProviderService.check_status returns them (status,
    progress), until a final one: COMPLETED, FAILED or CANCELLED."""
    from pixsim7.backend.main.domain import OperationType, ProviderStatus

    seen: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await service.check_status(submission, account(), operation_type=OperationType.IMAGE_TO_VIDEO)
        if not seen or (result.status, result.progress) != (seen[-1].status, seen[-1].progress):
            seen.append(result)
        if result.status in (ProviderStatus.COMPLETED, ProviderStatus.FAILED, ProviderStatus.CANCELLED):
            return seen
        await asyncio.sleep(every_s)
    raise AssertionError(f"no final status after {timeout_s} s; seen: {[(s.status, s.progress) for s in seen]}")
