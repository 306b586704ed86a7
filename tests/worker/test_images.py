"""Base images: data URIs, allowed local paths, decoding limits, orientation, colour modes, fitting."""

from __future__ import annotations

import base64
import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from npc_video_client.contract import ErrorCode
from npc_video_client.errors import JobError
from tests.support.jobs import data_uri, png_bytes
from worker.images import decode_image, fit_image, load_base_image, read_image_source
from worker.settings import Settings


def settings(**overrides) -> Settings:
    return Settings(device="cpu", **overrides)


def encoded(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a huge image whose pixel data is a few garbage bytes: it cannot be decoded."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"garbage") + png_chunk(b"IEND", b"")


def invalid_image(source: str, config: Settings, *, trusted: bool = False) -> str:
    with pytest.raises(JobError) as caught:
        load_base_image(source, config, trusted=trusted)
    assert caught.value.code == ErrorCode.INVALID_IMAGE
    assert not caught.value.retryable
    return caught.value.message


# -- data URIs --------------------------------------------------------------------------------------------


def test_png_data_uri_loads_with_its_sha256():
    data = png_bytes((96, 64))
    base = load_base_image(data_uri(data), settings())
    assert base.size == (96, 64)
    assert base.image.mode == "RGB"
    assert base.sha256 == hashlib.sha256(data).hexdigest()
    assert base.image.getpixel((0, 0)) == (20, 40, 200)
    assert base.image.getpixel((1, 0)) == (200, 120, 40)


def test_jpeg_data_uri_loads():
    data = encoded(Image.new("RGB", (40, 30), (10, 200, 30)), "JPEG")
    base = load_base_image(data_uri(data, "image/jpeg"), settings())
    assert base.size == (40, 30)
    red, green, blue = base.image.getpixel((20, 15))
    assert green > 150 and red < 60 and blue < 80


@pytest.mark.parametrize(
    "prefix",
    ["data:image/png;base64,", "DATA:IMAGE/PNG;BASE64,", "data:image/png;name=face.png;base64,"],
)
def test_data_uri_spellings_are_accepted(prefix):
    uri = prefix + base64.b64encode(png_bytes((8, 8))).decode()
    assert read_image_source(uri, settings(), trusted=False) == png_bytes((8, 8))


def test_data_uri_without_base64_is_refused():
    payload = base64.b64encode(png_bytes()).decode()
    message = invalid_image(f"data:image/png,{payload}", settings())
    assert "data:image/png;base64,<payload>" in message


@pytest.mark.parametrize(
    ("mime", "shown"), [("text/plain", '"text/plain"'), ("application/pdf", '"application/pdf"'), ("", "type none;")]
)
def test_non_image_media_type_is_refused(mime, shown):
    message = invalid_image(f"data:{mime};base64,{base64.b64encode(png_bytes()).decode()}", settings())
    assert shown in message and "expected image/*" in message


@pytest.mark.parametrize("payload", ["!!!not base64!!!", "iVBORw0KGgo", "aGVs bG8="])
def test_bad_base64_is_refused(payload):
    message = invalid_image(f"data:image/png;base64,{payload}", settings())
    assert "not valid base64" in message


def test_valid_base64_that_is_not_an_image_is_refused():
    message = invalid_image(data_uri(b"definitely not an image"), settings())
    assert "cannot be decoded" in message


def test_too_many_bytes_is_refused_before_decoding_base64():
    data = png_bytes((96, 64))
    config = settings(max_image_bytes=len(data) - 100)
    message = invalid_image(data_uri(data), config)
    assert f"limit of {len(data) - 100} bytes" in message
    assert load_base_image(data_uri(data), settings(max_image_bytes=len(data) + 2)).size == (96, 64)


def test_data_uri_of_exactly_the_byte_limit_is_accepted():
    data = png_bytes((96, 64))
    assert len(data) % 3 != 0  # so the base64 text is padded
    assert load_base_image(data_uri(data), settings(max_image_bytes=len(data))).size == (96, 64)


# -- decoding limits and normalisation ---------------------------------------------------------------------


def test_pixel_limit_refuses_from_the_header_before_decoding():
    # 8000 x 6000 = 48 M pixels claimed by a header with no pixel data: decoding it would fail differently.
    message = invalid_image(data_uri(png_header_claiming(8000, 6000)), settings())
    assert "8000x6000" in message and "over the limit of 40000000 pixels" in message
    with pytest.raises(JobError, match="cannot be decoded"):  # what decoding it would have said
        decode_image(png_header_claiming(800, 600), max_pixels=40_000_000)


def test_small_pixel_limit_refuses_a_real_image():
    with pytest.raises(JobError, match=r"96x64, over the limit of 6000 pixels") as caught:
        decode_image(png_bytes((96, 64)), max_pixels=6000)
    assert caught.value.code == ErrorCode.INVALID_IMAGE
    assert decode_image(png_bytes((96, 64)), max_pixels=96 * 64).size == (96, 64)


def test_enormous_claims_are_refused_as_invalid_image():
    message = invalid_image(data_uri(png_header_claiming(100_000, 100_000)), settings())
    assert "100000x100000" in message or "cannot be decoded" in message


def test_truncated_image_is_invalid_image():
    data = png_bytes((96, 64))
    message = invalid_image(data_uri(data[: len(data) // 2]), settings())
    assert "cannot be decoded" in message


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encoded(image, "JPEG", exif=exif.tobytes(), quality=95)
    decoded = decode_image(data, max_pixels=10_000)
    assert decoded.size == (20, 40)
    red, _, blue = decoded.getpixel((10, 3))  # the left edge is now at the top
    assert blue > 150 and red < 100


@pytest.mark.parametrize(
    ("mode", "color"), [("RGBA", (10, 20, 30, 128)), ("L", 77), ("P", 3), ("LA", (50, 200)), ("CMYK", (0, 0, 0, 0))]
)
def test_other_colour_modes_become_rgb(mode, color):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = encoded(Image.new(mode, (12, 10), color), fmt)
    decoded = decode_image(data, max_pixels=1000)
    assert decoded.mode == "RGB"
    assert decoded.size == (12, 10)


def test_grayscale_value_is_kept_in_rgb():
    decoded = decode_image(encoded(Image.new("L", (4, 4), 77), "PNG"), max_pixels=100)
    assert decoded.getpixel((1, 1)) == (77, 77, 77)


# -- local paths ------------------------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    (folder / "face.png").write_bytes(png_bytes((32, 48)))
    return folder


def test_path_inside_an_input_root_loads(inputs):
    config = settings(input_roots=[inputs])
    assert load_base_image(str(inputs / "face.png"), config).size == (32, 48)
    assert load_base_image(f"file://{inputs / 'face.png'}", config).size == (32, 48)


def test_path_inside_any_of_several_roots_loads(tmp_path, inputs):
    config = settings(input_roots=[tmp_path / "other", inputs])
    assert load_base_image(str(inputs / "face.png"), config).size == (32, 48)


def test_path_outside_the_roots_is_refused_without_naming_server_paths(tmp_path, inputs):
    outside = tmp_path / "secret.png"
    outside.write_bytes(png_bytes())
    message = invalid_image(str(outside), settings(input_roots=[inputs]))
    assert "outside the allowed input roots" in message and "NPC_WORKER_INPUT_ROOTS" in message
    assert str(inputs) not in message


def test_dot_dot_escape_from_a_root_is_refused(tmp_path, inputs):
    (tmp_path / "secret.png").write_bytes(png_bytes())
    message = invalid_image(str(inputs / ".." / "secret.png"), settings(input_roots=[inputs]))
    assert "outside the allowed input roots" in message


def test_without_roots_every_job_path_is_refused(inputs):
    message = invalid_image(str(inputs / "face.png"), settings())
    assert "none (set NPC_WORKER_INPUT_ROOTS)" in message


def test_trusted_catalog_paths_need_no_root(inputs):
    assert load_base_image(str(inputs / "face.png"), settings(), trusted=True).size == (32, 48)


def test_nonexistent_file_is_refused(inputs):
    message = invalid_image(str(inputs / "missing.png"), settings(input_roots=[inputs]))
    assert "does not exist" in message


def test_a_directory_is_not_a_file(inputs):
    (inputs / "folder").mkdir()
    assert "not a file" in invalid_image(str(inputs / "folder"), settings(input_roots=[inputs]))


def test_oversized_local_file_is_refused(inputs):
    size = (inputs / "face.png").stat().st_size
    message = invalid_image(str(inputs / "face.png"), settings(input_roots=[inputs], max_image_bytes=size - 1))
    assert f"limit of {size - 1} bytes" in message


def test_local_file_that_is_not_an_image_is_refused(inputs):
    (inputs / "notes.png").write_text("hello")
    assert "cannot be decoded" in invalid_image(str(inputs / "notes.png"), settings(input_roots=[inputs]))


@pytest.mark.parametrize(
    "source",
    [
        "face\x00.png",  # NUL byte: the OS refuses it (ValueError)
        "x" * 300 + ".png",  # a component longer than NAME_MAX (ENAMETOOLONG)
        "~nosuchuser/face.png",  # never expanded: no lookup of a user that does not exist...
        "~root/.bashrc",  # ...nor of one that does (it would read the password database)
        "/proc/self/mem/../../../etc/passwd",
    ],
)
def test_hostile_job_paths_are_invalid_image_and_never_expanded(inputs, source):
    message = invalid_image(source, settings(input_roots=[inputs]))
    assert message.startswith("npc_base_image ")
    assert "root:x:" not in message  # no file content ever comes back


def test_home_directory_paths_are_taken_literally_inside_a_root(inputs, monkeypatch):
    (inputs / "~alice").mkdir()
    (inputs / "~alice" / "face.png").write_bytes(png_bytes())
    monkeypatch.chdir(inputs)
    assert load_base_image("~alice/face.png", settings(input_roots=[inputs])).size == (96, 64)


@pytest.mark.parametrize("source", ["gopher://example.com/x.png", "ftp://example.com/x.png"])
def test_unsupported_schemes_are_refused(source):
    message = invalid_image(source, settings())
    assert source.split(":")[0] in message and "not supported" in message


# -- fitting ----------------------------------------------------------------------------------------------


def three_bands(size: tuple[int, int]) -> Image.Image:
    """Red, green and blue vertical thirds."""
    width, height = size
    image = Image.new("RGB", size, (0, 255, 0))
    image.paste((255, 0, 0), (0, 0, width // 3, height))
    image.paste((0, 0, 255), (width - width // 3, 0, width, height))
    return image


def test_fit_image_gives_the_exact_size():
    for target in ((64, 64), (48, 32), (32, 48), (200, 100)):
        assert fit_image(three_bands((300, 150)), *target).size == target


def test_fit_image_crops_the_centre_without_distortion():
    # 300x100 -> 100x100: scale 1, keep x in 100..200, which is all green.
    square = fit_image(three_bands((300, 100)), 100, 100)
    for x in (2, 50, 97):
        red, green, blue = square.getpixel((x, 50))
        assert green > 200 and red < 60 and blue < 60, (x, square.getpixel((x, 50)))


def test_fit_image_keeps_the_sides_when_only_the_top_and_bottom_are_cut():
    # 300x300 -> 150x75: scale 0.5, crop vertically; all three bands remain left to right.
    wide = fit_image(three_bands((300, 300)), 150, 75)
    assert wide.getpixel((5, 37))[0] > 200
    assert wide.getpixel((75, 37))[1] > 200
    assert wide.getpixel((144, 37))[2] > 200


def test_decoded_images_are_cached_per_content_hash():
    from worker.images import DecodedImages

    cache = DecodedImages(max_entries=2)
    first = cache.decode(png_bytes(), "sha-a", 10_000_000)
    assert cache.decode(png_bytes(), "sha-a", 10_000_000) is first
    cache.decode(png_bytes(), "sha-b", 10_000_000)
    cache.decode(png_bytes(), "sha-c", 10_000_000)
    assert len(cache) == 2
    assert cache.decode(png_bytes(), "sha-a", 10_000_000) is not first  # evicted (least recently used)
