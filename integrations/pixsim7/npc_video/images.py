"""The base image as the workers read it. URLs they fetch themselves (http(s)://, s3://, data:) pass unchanged;
anything else (a pixsim7 asset such as "asset:42", a file:// URL or a path) is resolved by pixsim7's own resolver,
the `resolve_source_fn` ProviderService hands to `prepare_execution_params` (it checks the asset belongs to the
generation's user, prefers the asset's local file and downloads its remote URL otherwise), and sent inline as a
`data:` URL, so the workers need no access to pixsim7's storage."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pixsim7.backend.main.domain.enums import GenerationErrorCode
from pixsim7.backend.main.services.provider.base import ProviderError

PASSED_ON = ("http://", "https://", "s3://", "data:")
INLINE_LIMIT_BYTES = 20 * 1024 * 1024  # the workers' default NPC_WORKER_MAX_IMAGE_BYTES
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)

ResolveSource = Callable[[Any, int, str], Awaitable[tuple[str, list[str]]]]


def media_type(data: bytes) -> str:
    """The image type from the file's first bytes; bytes of no known format are application/octet-stream, which the
    workers refuse as invalid_image naming that type (bytes of a known format that are broken, they refuse on
    decoding)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for signature, kind in SIGNATURES if data.startswith(signature)), "application/octet-stream")


async def worker_image(source: str, user_id: int, resolve_source_fn: ResolveSource) -> str:
    if source.startswith(PASSED_ON):
        return source
    path, temporary = await resolve_source_fn(source, user_id, ".png")
    try:
        size = Path(path).stat().st_size
        if size > INLINE_LIMIT_BYTES:
            raise ProviderError(
                f"base image {source} is {size} bytes, over the {INLINE_LIMIT_BYTES} the workers accept "
                "(NPC_WORKER_MAX_IMAGE_BYTES); use a smaller image",
                error_code=GenerationErrorCode.PARAM_INVALID.value,
                retryable=False,
            )
        data = Path(path).read_bytes()
    finally:
        for temp in temporary:  # pixsim7's resolver downloaded these for us: ours to delete
            Path(temp).unlink(missing_ok=True)
    return f"data:{media_type(data)};base64,{base64.b64encode(data).decode('ascii')}"
