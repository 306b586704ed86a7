"""Drive the npc-video plugin through pixsim7's real backend modules against a real npc-worker.

try-in-pixsim7.sh runs it, with the patched pixsim7 clone on PYTHONPATH and NPC_VIDEO_REDIS_URL / NPC_VIDEO_PREFIX
naming the worker's Redis:

    python try_in_pixsim7.py WORK      (WORK: where it writes its test images)

Real: the provider registry and plugin discovery (register_providers_from_plugins, what pixsim7's startup and arq
workers call), CreateGenerationRequest (the POST /api/v1/generations body schema), canonicalize_params (patched),
validate_structured_params, the SQLModel classes Generation / ProviderAccount / ProviderSubmission / Asset,
ProviderService.execute_generation / check_status / cancel_job and resolve_source_to_local_file under them.
Not real: the database. ProviderService takes an AsyncSession; as in pixsim7's own tests
(backend/tests/services/test_provider_service_error_codes.py, `_FakeDB`) a fake with add/commit/refresh stands in,
plus get() answering the Asset rows as Postgres would. No FastAPI app, no arq, no Postgres.

Prints STEP lines (what happened), CHECK lines (PASS or FAIL) and a SUMMARY; exits 1 when a check failed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import struct
import sys
import time
import urllib.request
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixsim7.backend.main.domain import Asset, Generation
    from pixsim7.backend.main.domain.providers import ProviderAccount, ProviderSubmission
    from pixsim7.backend.main.services.provider.base import Provider, ProviderStatusResult
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

USER_ID = 3
GOOD_ASSET, NOT_AN_IMAGE_ASSET, TRUNCATED_PNG_ASSET = 42, 43, 44
CHECKS: dict[str, bool] = {}
_generation_ids = itertools.count(4711)


def say(*parts: object) -> None:
    print("STEP", *parts, flush=True)


def check(name: str, ok: bool, detail: str = "") -> None:
    CHECKS[name] = bool(ok)
    print(f"CHECK {name}: {'PASS' if ok else 'FAIL'} {detail}".rstrip(), flush=True)


def png(width: int = 96, height: int = 64) -> bytes:
    """A small striped RGB PNG, written by hand: pixsim7's venv here has no Pillow."""
    stripe, ground = bytes((20, 40, 200)), bytes((200, 120, 40))
    row = b"\x00" + b"".join(stripe if x % 8 == 0 else ground for x in range(width))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(row * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class FakeDB:
    """pixsim7's own test double for ProviderService's AsyncSession, plus get() answering Asset rows."""

    def __init__(self, assets: dict[int, Asset]) -> None:
        self.assets = assets
        self.added: list[object] = []

    def add(self, obj: object) -> None:
        self.added.append(obj)

    async def commit(self) -> None:
        return None

    async def refresh(self, obj: Any) -> None:
        if getattr(obj, "id", None) is None:
            obj.id = len(self.added)

    async def get(self, model: type, key: object) -> object | None:
        """Asset rows only: User (prompt variables) and Generation (thumbnail stamping) have none here."""
        from pixsim7.backend.main.domain import Asset

        return self.assets.get(int(str(key))) if model is Asset else None


def image_asset(asset_id: int, path: Path) -> Asset:
    """An uploaded image as pixsim7 stores it: resolve_source_to_local_file reads its local_path."""
    from pixsim7.backend.main.domain import Asset
    from pixsim7.backend.main.domain.enums import MediaType

    return Asset(
        id=asset_id,
        user_id=USER_ID,
        media_type=MediaType.IMAGE,
        local_path=str(path),
        file_size_bytes=path.stat().st_size,
        provider_id="upload",
        provider_asset_id=f"local-{asset_id}",
    )


def accountless_account() -> ProviderAccount:
    """As AccountService._ensure_accountless_shared_account creates it for a requires_credentials=False provider."""
    from pixsim7.backend.main.domain.providers import ProviderAccount

    return ProviderAccount(
        id=1,
        user_id=None,
        email="accountless+npc-video@pixsim.local",
        provider_id="npc-video",
        is_private=False,
        nickname="Accountless System Account",
        provider_metadata={"accountless": True, "managed_by": "system"},
    )


def request_body(npc_extra: dict[str, Any] | None = None, asset: int = GOOD_ASSET, priority: int = 8) -> dict:
    """The request of docs/integrations/pixsim7.md section 6, verbatim, with optional npc_params overrides."""
    npc = {
        "npc_id": "tavern-keeper",
        "npc_name": "Mira",
        "expression": "giggling",
        "emotion": "flustered",
        "animation": "blush",
        "intensity": 0.8,
        "art_style": "anime",
        "quality_preset": "fast",
    }
    npc.update(npc_extra or {})
    return {
        "provider_id": "npc-video",
        "priority": priority,
        "config": {
            "generation_type": "image_to_video",
            "semantic_type": "npc_response",
            "purpose": "adaptive",
            "strategy": "always",
            "style": {},
            "duration": {},
            "constraints": {},
            "fallback": {"mode": "placeholder"},
            "prompt": "Mira, the tavern keeper",
            "composition_assets": [{"asset": f"asset:{asset}", "media_type": "image", "role": "source_image"}],
            "npc_params": npc,
        },
    }


def generation_from_request(body: dict) -> Generation:
    """What POST /api/v1/generations makes of the body: structured params (api/v1/generations.py), canonicalized
    as GenerationCreationService does, in the Generation row it creates."""
    from pixsim7.backend.main.domain import Generation
    from pixsim7.backend.main.services.generation.creation_helpers.params import (
        canonicalize_params,
        validate_structured_params,
    )
    from pixsim7.backend.main.shared.operation_mapping import resolve_operation_type
    from pixsim7.backend.main.shared.schemas.generation_schemas import CreateGenerationRequest

    request = CreateGenerationRequest.model_validate(body)
    operation_type = resolve_operation_type(request.config.generation_type)
    params = {
        "generation_config": request.config.model_dump(),
        "scene_context": {"from_scene": None, "to_scene": None},
        "player_context": None,
        "social_context": None,
    }
    validate_structured_params(operation_type, params["generation_config"], params)
    return Generation(
        id=next(_generation_ids),
        user_id=USER_ID,
        operation_type=operation_type,
        provider_id=request.provider_id,
        canonical_params=canonicalize_params(params, operation_type, request.provider_id),
        priority=request.priority,
    )


async def submit(
    service: ProviderService, account: ProviderAccount, body: dict
) -> tuple[Generation, ProviderSubmission]:
    """A generation from the request body, executed as pixsim7's job processor does."""
    generation = generation_from_request(body)
    submission = await service.execute_generation(generation, account, generation.canonical_params)
    return generation, submission


async def status_of(
    service: ProviderService, submission: ProviderSubmission, account: ProviderAccount
) -> ProviderStatusResult:
    from pixsim7.backend.main.domain import OperationType

    return await service.check_status(submission, account, operation_type=OperationType.IMAGE_TO_VIDEO)


async def poll(
    service: ProviderService, submission: ProviderSubmission, account: ProviderAccount, timeout_s: float = 600
) -> tuple[ProviderStatusResult, list[tuple[str, float | None]]]:
    """Poll as pixsim7's status poller does (faster), until a final status; returns it and each change seen."""
    from pixsim7.backend.main.domain import ProviderStatus

    final = {ProviderStatus.COMPLETED, ProviderStatus.FAILED, ProviderStatus.CANCELLED}
    seen: list[tuple[str, float | None]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await status_of(service, submission, account)
        entry = (result.status.value, None if result.progress is None else round(result.progress, 3))
        if not seen or seen[-1] != entry:
            seen.append(entry)
        if result.status in final:
            return result, seen
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no final status in {timeout_s}s; seen {seen}")


async def check_render(service: ProviderService, account: ProviderAccount) -> None:
    """The doc's generation completes, its progress rising, with an MP4 pixsim7 can download."""
    from pixsim7.backend.main.domain import ProviderStatus

    generation = generation_from_request(request_body())
    say(
        "canonical_params keys:",
        sorted(generation.canonical_params),
        "npc_params kept:",
        generation.canonical_params.get("npc_params") is not None,
    )
    submission = await service.execute_generation(generation, account, generation.canonical_params)
    resolved = generation.resolved_params or {}
    say(
        "execute_generation -> submission.status",
        submission.status,
        "provider_job_id",
        submission.provider_job_id,
        "response.metadata",
        submission.response.get("metadata"),
    )
    say("resolved_params keys", sorted(resolved), "lane", resolved.get("lane"))
    started = time.monotonic()
    done, seen = await poll(service, submission, account)
    say(f"polled {time.monotonic() - started:.1f}s; (status, progress) seen:", seen)
    say(
        "final:",
        done.status.value,
        "video_url",
        done.video_url,
        "thumbnail_url",
        done.thumbnail_url,
        "w/h",
        done.width,
        done.height,
        "duration_sec",
        done.duration_sec,
        "provider_video_id",
        done.provider_video_id,
        "has_retrievable_media_url",
        done.has_retrievable_media_url,
        "error",
        done.error_message,
    )
    say("submission.response progress/status:", submission.response.get("progress"), submission.response.get("status"))
    progress = [value for status, value in seen if status == "processing"]
    check(
        "completed, progress rising 0..1",
        done.status == ProviderStatus.COMPLETED
        and len(progress) >= 2
        and progress == sorted(progress)
        and progress[0] < progress[-1] <= 1,
        f"progress values while processing: {progress}",
    )
    clip = b""
    if done.video_url:
        with urllib.request.urlopen(done.video_url, timeout=30) as response:
            clip = response.read()
    say("fetched", len(clip), "bytes; bytes[4:8] =", clip[4:8])
    check("video_url fetchable MP4 (ftyp)", clip[4:8] == b"ftyp")


async def check_bad_images(service: ProviderService, account: ProviderAccount) -> None:
    """A base image the worker cannot read fails the generation with the worker's own message, not a repr."""
    from pixsim7.backend.main.domain import ProviderStatus

    cases = [
        ("bad image", NOT_AN_IMAGE_ASSET, "bad image -> FAILED with readable error_message"),
        ("truncated PNG", TRUNCATED_PNG_ASSET, "corrupt PNG -> FAILED with readable error_message"),
    ]
    for label, asset, name in cases:
        generation, submission = await submit(service, account, request_body(asset=asset, priority=5))
        say(f"{label}: provider_job_id", submission.provider_job_id, "lane", generation.resolved_params.get("lane"))
        failed, seen = await poll(service, submission, account)
        message = failed.error_message or ""
        say(
            f"{label}: seen",
            seen,
            "final",
            failed.status.value,
            "error_message:",
            repr(failed.error_message),
            "metadata.error_code",
            (failed.metadata or {}).get("error_code"),
        )
        check(name, failed.status == ProviderStatus.FAILED and bool(message) and " object at 0x" not in message)


async def check_cancel(service: ProviderService, account: ProviderAccount) -> None:
    """cancel_job on a running job answers True and the job ends CANCELLED (a long job: many steps, tiny frames)."""
    from pixsim7.backend.main.domain import ProviderStatus

    body = request_body({"steps": 200, "width": 32, "height": 32}, priority=2)
    generation, submission = await submit(service, account, body)
    say("cancel: provider_job_id", submission.provider_job_id, "lane", generation.resolved_params.get("lane"))
    deadline = time.monotonic() + 300
    status = await status_of(service, submission, account)
    while status.status == ProviderStatus.PENDING and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        status = await status_of(service, submission, account)
    metadata = status.metadata or {}
    say(
        "cancel: before cancel:",
        status.status.value,
        "progress",
        status.progress,
        "step",
        metadata.get("step"),
        "/",
        metadata.get("steps"),
    )
    cancelled = await service.cancel_job(submission, account)
    say("cancel_job ->", cancelled)
    ended, seen = await poll(service, submission, account)
    again = await service.cancel_job(submission, account)
    say(
        "cancel: seen after cancel",
        seen,
        "final",
        ended.status.value,
        "error_message",
        repr(ended.error_message),
        "; second cancel_job ->",
        again,
    )
    check(
        "cancel running -> True then CANCELLED",
        status.status == ProviderStatus.PROCESSING and cancelled is True and ended.status == ProviderStatus.CANCELLED,
        f"(second cancel -> {again})",
    )


async def check_warm(service: ProviderService, account: ProviderAccount, provider: Provider) -> None:
    """The doc's "Warming an NPC's reactions": a likely reaction warmed, its warm job cancelled (the NPC left) and
    warmed again (it came back), made by the worker; the generation that later asks for it completes as a cache hit
    of that video."""
    import redis as redis_py
    from pixsim7.backend.main.domain import ProviderStatus
    from pixsim7.backend.main.domain.providers.execution.file_resolver import resolve_source_to_local_file

    async def resolve(source: Any, user_id: int, default_suffix: str) -> tuple[str, list[str]]:
        """resolve_source_fn as ProviderService binds it to its database session."""
        return await resolve_source_to_local_file(
            source=source, user_id=user_id, default_suffix=default_suffix, db_session=service.db
        )

    body = request_body({"expression": "winking", "steps": 2, "width": 64, "height": 64}, priority=5)
    likely = [generation_from_request(body).canonical_params]
    ids = await provider.warm(likely, user_id=USER_ID, resolve_source_fn=resolve)
    cancelled = await provider.warm_cancel(likely, user_id=USER_ID, resolve_source_fn=resolve)
    again = await provider.warm(likely, user_id=USER_ID, resolve_source_fn=resolve)
    say("warm ->", ids, "warm_cancel ->", cancelled, "warm again ->", again)
    deadline = time.monotonic() + 300
    ready = await provider.warm_status(likely, user_id=USER_ID, resolve_source_fn=resolve)
    while ready.ready_count < ready.total and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        ready = await provider.warm_status(likely, user_id=USER_ID, resolve_source_fn=resolve)
    say("warm_status:", ready)
    check("warm, warm_cancel, warm again -> ready", ids == cancelled == again and ready.ready_count == 1)
    _generation, submission = await submit(service, account, body)
    done, seen = await poll(service, submission, account)
    stored = redis_py.Redis.from_url(os.environ["NPC_VIDEO_REDIS_URL"]).get(f"npc:result:{submission.provider_job_id}")
    cache_hit = stored is not None and json.loads(stored).get("cache_hit") is True
    say("warmed generation: seen", seen, "final", done.status.value, "worker result cache_hit", cache_hit)
    check("warmed generation -> COMPLETED as a cache hit", done.status == ProviderStatus.COMPLETED and cache_hit)


async def check_errors(service: ProviderService, account: ProviderAccount, provider: Provider) -> None:
    """An unknown job id is pixsim7's JobNotFoundError; an unreachable Redis is a retryable provider_unavailable."""
    from pixsim7.backend.main.domain.providers import ProviderSubmission
    from pixsim7.backend.main.services.provider.base import JobNotFoundError, ProviderError

    ghost = ProviderSubmission(
        generation_id=1,
        account_id=1,
        provider_id="npc-video",
        payload={},
        response={},
        retry_attempt=0,
        submitted_at=datetime.now(UTC),
        provider_job_id="pixsim7-1-nope",
    )
    try:
        await status_of(service, ghost, account)
        check("unknown job -> JobNotFoundError", False, "no exception")
    except JobNotFoundError as exc:
        check("unknown job -> JobNotFoundError", True, f"{type(exc).__name__}: {exc}")

    os.environ["NPC_VIDEO_REDIS_URL"] = "redis://127.0.0.1:1/0"  # the plugin reads it when constructed
    down = type(provider)()
    try:
        await down.check_status(account=account, provider_job_id="pixsim7-1-x")
        check("redis down -> retryable provider_unavailable", False, "no exception")
    except ProviderError as exc:
        check(
            "redis down -> retryable provider_unavailable",
            exc.retryable is True and exc.error_code == "provider_unavailable",
            f"{type(exc).__name__}(error_code={exc.error_code}, retryable={exc.retryable}): {str(exc)[:120]}",
        )


def load_provider() -> Provider:
    """Discover the plugins as pixsim7 does at start, and take the one it registered as npc-video."""
    from pixsim7.backend.main.domain.providers.registry import register_providers_from_plugins, registry

    count = register_providers_from_plugins()
    say("registry: register_providers_from_plugins() ->", count, "providers:", sorted(registry.list_provider_ids()))
    provider = registry.get("npc-video")
    manifest = provider.get_manifest()
    say(
        "registry.get('npc-video') ->",
        f"{type(provider).__module__}.{type(provider).__name__}",
        "manifest:",
        manifest.id,
        manifest.kind.value,
        "requires_credentials=",
        manifest.requires_credentials,
    )
    return provider


async def main(work: Path) -> int:
    from pixsim7.backend.main.services.provider.provider_service import ProviderService

    provider = load_provider()
    assets = work / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    images = {
        GOOD_ASSET: ("mira.png", png()),
        NOT_AN_IMAGE_ASSET: ("broken.png", b"this is not an image"),
        TRUNCATED_PNG_ASSET: ("truncated.png", png()[:40]),  # starts like a PNG, cannot be decoded
    }
    for name, data in images.values():
        (assets / name).write_bytes(data)
    service = ProviderService(FakeDB({key: image_asset(key, assets / name) for key, (name, _) in images.items()}))
    account = accountless_account()

    await check_render(service, account)
    await check_bad_images(service, account)
    await check_cancel(service, account)
    await check_warm(service, account, provider)
    await check_errors(service, account, provider)

    print("SUMMARY", json.dumps(CHECKS), flush=True)
    return 0 if CHECKS and all(CHECKS.values()) else 1


if __name__ == "__main__":
    # pixsim7's own loggers stay at WARNING; the plugin's and the registry's INFO lines are part of the story
    logging.basicConfig(level=logging.WARNING, format="LOG %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pixsim7.backend.main.providers.npc_video").setLevel(logging.INFO)
    logging.getLogger("pixsim7.backend.main.domain.providers.registry.provider_registry").setLevel(logging.INFO)
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} WORK")
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
