"""Base images: read from a data: URI or an allowed local path, decoded safely, oriented and fitted.

Jobs are untrusted input: local paths must lie under the configured input roots (symlinks resolved),
and images over the pixel or byte limits are refused before decoding (decompression bombs).
Paths from the catalog (`[npcs.*].base_image`) are the operator's and need no input root.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from worker.contract import ErrorCode
from worker.errors import JobError
from worker.settings import Settings

DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.IGNORECASE
)


@dataclass(frozen=True)
class BaseImage:
    image: Image.Image
    sha256: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _invalid(message: str) -> JobError:
    return JobError(ErrorCode.INVALID_IMAGE, message)


def _read_data_uri(source: str, max_bytes: int) -> bytes:
    match = DATA_URI.match(source)
    if match is None or not match.group("b64"):
        raise _invalid("npc_base_image data URI must look like data:image/png;base64,<payload>")
    mime = (match.group("mime") or "").lower()
    if not mime.startswith("image/"):
        raise _invalid(f"npc_base_image data URI has media type {mime or 'none'!r}; expected image/*")
    payload = source[match.end() :]
    if len(payload) * 3 // 4 > max_bytes:
        raise _invalid(f"npc_base_image is larger than the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"npc_base_image data URI is not valid base64: {exc}") from exc


def _read_local(source: str, roots: list[Path], trusted: bool, max_bytes: int) -> bytes:
    path = Path(source.removeprefix("file://")).expanduser()
    resolved = path.resolve()
    if not trusted and not any(resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots) or "none configured (set NPC_WORKER_INPUT_ROOTS)"
        raise _invalid(f"npc_base_image path {source!r} is outside the allowed input roots: {allowed}")
    if not resolved.is_file():
        raise _invalid(f"npc_base_image {source!r} does not exist or is not a file")
    if resolved.stat().st_size > max_bytes:
        raise _invalid(f"npc_base_image {source!r} is larger than the limit of {max_bytes} bytes")
    return resolved.read_bytes()


def read_image_source(source: str, settings: Settings, *, trusted: bool) -> bytes:
    """The raw bytes behind a base-image reference; refuses what is not allowed with invalid_image."""
    if source.lower().startswith("data:"):
        return _read_data_uri(source, settings.max_image_bytes)
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("", "file"):
        return _read_local(source, settings.input_roots, trusted, settings.max_image_bytes)
    raise _invalid(f"npc_base_image scheme {scheme!r}:// is not supported; use a data: URI or an allowed path")


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode, refusing images over `max_pixels` before their pixels are read; EXIF orientation applied."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise _invalid(f"base image is {width}x{height}, over the limit of {max_pixels} pixels")
            opened.load()
            oriented = ImageOps.exif_transpose(opened)
            return oriented.convert("RGB")
    except JobError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise _invalid(f"base image cannot be decoded as an image: {exc}") from exc


def load_base_image(source: str, settings: Settings, *, trusted: bool = False) -> BaseImage:
    data = read_image_source(source, settings, trusted=trusted)
    return BaseImage(image=decode_image(data, settings.max_image_pixels), sha256=hashlib.sha256(data).hexdigest())


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover the target and centre-crop, so the aspect ratio is never distorted."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
