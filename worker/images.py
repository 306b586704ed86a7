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
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from npc_video_client.messages import quote
from worker.fetch import REMOTE_SCHEMES, fetch_remote
from worker.settings import Settings

DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.IGNORECASE
)


# Only plain raster formats: Pillow's other plugins (EPS runs Ghostscript, ...) are not for untrusted input.
DECODABLE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
# A producer's own path or URL, quoted in full up to this length (a catalog path, the operator's, never is).
SOURCE_QUOTE_LIMIT = 200


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
        raise _invalid(f"npc_base_image data URI has media type {quote(mime) if mime else 'none'}; expected image/*")
    payload = source[match.end() :]
    if len(payload) > (max_bytes + 2) // 3 * 4:  # cheap bound before decoding anything
        raise _invalid(f"npc_base_image is larger than the limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"npc_base_image data URI is not valid base64: {exc}") from exc
    if len(data) > max_bytes:
        raise _invalid(f"npc_base_image is larger than the limit of {max_bytes} bytes")
    return data


def _read_local(source: str, roots: list[Path], trusted: bool, max_bytes: int) -> bytes:
    """A file under an input root. Job paths are taken literally: never `~`-expanded (that would look users up
    in the system's password database), and every failure, whatever the path holds, is invalid_image."""
    shown = "(the catalog's base image of this NPC)" if trusted else quote(source, SOURCE_QUOTE_LIMIT)
    try:
        resolved = Path(source.removeprefix("file://")).resolve()
        if not trusted and not any(resolved.is_relative_to(root) for root in roots):
            allowed = "input roots set by NPC_WORKER_INPUT_ROOTS" if roots else "none (set NPC_WORKER_INPUT_ROOTS)"
            raise _invalid(f"npc_base_image path {shown} is outside the allowed input roots: {allowed}")
        if not resolved.is_file():
            raise _invalid(f"npc_base_image {shown} does not exist or is not a file")
        if resolved.stat().st_size > max_bytes:
            raise _invalid(f"npc_base_image {shown} is larger than the limit of {max_bytes} bytes")
        return resolved.read_bytes()
    except (OSError, ValueError) as exc:  # NUL bytes, names too long, loops, permissions...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a usable path"
        raise _invalid(f"npc_base_image {shown} cannot be read: {reason}") from exc


def read_image_source(source: str, settings: Settings, *, trusted: bool) -> bytes:
    """The raw bytes behind a base-image reference; refuses what is not allowed with invalid_image."""
    if source.lower().startswith("data:"):
        return _read_data_uri(source, settings.max_image_bytes)
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    if scheme in ("", "file"):
        return _read_local(source, settings.input_roots, trusted, settings.max_image_bytes)
    if scheme in REMOTE_SCHEMES:
        return fetch_remote(source, settings)
    raise _invalid(
        f"npc_base_image {quote(source, SOURCE_QUOTE_LIMIT)} uses scheme {quote(scheme)}, which is not supported; "
        "use a data: URI, an allowed path, s3://bucket/key or http(s)://"
    )


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode, refusing images over `max_pixels` before their pixels are read; EXIF orientation applied."""
    try:
        with Image.open(io.BytesIO(data), formats=DECODABLE_FORMATS) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise _invalid(f"base image is {width}x{height}, over the limit of {max_pixels} pixels")
            opened.load()
            oriented = ImageOps.exif_transpose(opened)
            return oriented.convert("RGB")
    except JobError:
        raise
    except UnidentifiedImageError as exc:  # PIL's own message names its BytesIO object: say what it means instead
        formats = ", ".join(sorted(DECODABLE_FORMATS))
        raise _invalid(
            f"base image cannot be decoded as an image: its {len(data)} bytes are none of the formats read ({formats})"
        ) from exc
    except (Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise _invalid(f"base image cannot be decoded as an image: {exc}") from exc


class DecodedImages:
    """Decoded base images by content hash (LRU): an NPC's next job reuses its decoded start frame."""

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._images: OrderedDict[tuple[str, int], Image.Image] = OrderedDict()
        self._lock = threading.Lock()

    def decode(self, data: bytes, sha256: str, max_pixels: int) -> Image.Image:
        key = (sha256, max_pixels)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = decode_image(data, max_pixels)
        with self._lock:
            self._images[key] = image
            while len(self._images) > self.max_entries:
                self._images.popitem(last=False)
        return image

    def __len__(self) -> int:
        return len(self._images)


decoded_images = DecodedImages()


def load_base_image(source: str, settings: Settings, *, trusted: bool = False) -> BaseImage:
    """The decoded start frame behind a reference; the returned image is shared, so never mutate it."""
    data = read_image_source(source, settings, trusted=trusted)
    sha256 = hashlib.sha256(data).hexdigest()
    return BaseImage(image=decoded_images.decode(data, sha256, settings.max_image_pixels), sha256=sha256)


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover the target and centre-crop, so the aspect ratio is never distorted."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS)
