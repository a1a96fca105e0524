"""Reference images from bytes to fitted pixels: sniffing, data URIs, decoding guards, cover-fit, PNG output."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from reelgate.errors import InvalidRequest, RequestTooLarge
from reelgate.inputs.images import FRAME_SIDE, decode_data_uri, fit_cover, load_image, save_reference, sniff

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def encode(image: Image.Image, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def solid(color: tuple[int, ...], size: tuple[int, int] = (8, 6), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`x`height` (the pixel data is missing)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


# --- sniff ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("format", "expected"), [("JPEG", "jpeg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif")])
def test_sniff_knows_each_format_by_its_magic_bytes(format: str, expected: str) -> None:
    assert sniff(encode(solid(RED), format)) == expected


@pytest.mark.parametrize("data", [b"<html>not an image</html>", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"BM\x00\x00"])
def test_sniff_refuses_anything_else(data: bytes) -> None:
    with pytest.raises(InvalidRequest, match="is not a JPEG, PNG, WebP or GIF image") as caught:
        sniff(data)
    assert caught.value.param == "input_reference"


def test_sniff_names_the_callers_param_and_empty_input() -> None:
    with pytest.raises(InvalidRequest, match=r"^image is empty\.$") as caught:
        sniff(b"", param="image")
    assert caught.value.param == "image"


# --- data URIs -----------------------------------------------------------------------------------


def test_data_uri_round_trips_and_tolerates_missing_padding_and_line_breaks() -> None:
    png = encode(solid(RED), "PNG")
    assert decode_data_uri(data_uri(png), max_bytes=10_000) == png
    unpadded = data_uri(png).rstrip("=")
    wrapped = unpadded[:60] + "\n" + unpadded[60:]
    assert decode_data_uri(wrapped, max_bytes=10_000) == png


def test_data_uri_trusts_the_bytes_not_the_declared_subtype() -> None:
    jpeg = encode(solid(RED), "JPEG")
    assert decode_data_uri(data_uri(jpeg, "image/png"), max_bytes=10_000) == jpeg


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://example.com/cat.png", "is not a data URI"),
        ("data:image/png;base64", "is not a data URI"),
        ("data:image/png;base64,@@@not-base64@@@", "is not valid base64"),
        ("data:text/plain;base64,aGVsbG8=", "must have an image/\\* media type, not text/plain"),
        ("data:;base64,aGVsbG8=", "must have an image/\\* media type, not no media type"),
        ("data:image/png,%89PNG", "must be base64-encoded"),
        (data_uri(b"GIF? no, plain text"), "is not a JPEG, PNG, WebP or GIF image"),
    ],
)
def test_data_uri_errors_say_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        decode_data_uri(uri, max_bytes=10_000)
    assert caught.value.status_code == 400
    assert caught.value.message.startswith("input_reference ")


@pytest.mark.parametrize("size", [1_001, 100_000])  # just over (decoded, then refused) and far over (never decoded)
def test_data_uri_over_the_limit_is_413(size: int) -> None:
    payload = encode(solid(RED), "PNG") + b"\x00" * size
    with pytest.raises(RequestTooLarge, match="larger than the limit of 1000 bytes") as caught:
        decode_data_uri(data_uri(payload), max_bytes=1_000)
    assert caught.value.status_code == 413


# --- load_image ----------------------------------------------------------------------------------


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_load_image_gives_rgb_of_each_format(format: str) -> None:
    image = load_image(encode(solid(RED, (10, 7)), format))
    assert image.mode == "RGB" and image.size == (10, 7)
    assert np.abs(np.asarray(image).astype(int) - RED).max() <= 8  # JPEG is lossy


def test_transparency_is_composited_on_white() -> None:
    picture = solid((255, 0, 0, 0), mode="RGBA")
    picture.putpixel((0, 0), (255, 0, 0, 255))
    pixels = np.asarray(load_image(encode(picture, "PNG")))
    assert tuple(pixels[0, 0]) == RED
    assert tuple(pixels[1, 1]) == (255, 255, 255)


def test_gif_gives_its_first_frame_with_transparency_on_white() -> None:
    first = solid(RED).convert("P")
    second = solid(BLUE).convert("P")
    animated = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    assert tuple(np.asarray(load_image(animated))[0, 0]) == RED

    clear = Image.new("P", (4, 4), 0)
    clear.putpalette([0, 0, 0, 255, 0, 0])
    clear.putpixel((0, 0), 1)
    pixels = np.asarray(load_image(encode(clear, "GIF", transparency=0)))
    assert tuple(pixels[0, 0]) == RED
    assert tuple(pixels[3, 3]) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    # Stored 40 wide, left red and right blue; orientation 6 means "turn 90° clockwise to view".
    stored = solid(RED, (40, 20))
    stored.paste(BLUE, (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_image(encode(stored, "JPEG", exif=exif, quality=95))
    assert image.size == (20, 40)
    pixels = np.asarray(image).astype(int)
    assert np.abs(pixels[5, 10] - RED).max() <= 16  # the left edge is now the top
    assert np.abs(pixels[35, 10] - BLUE).max() <= 16


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 32768, 65535]], dtype=np.uint16)
    pixels = np.asarray(load_image(encode(Image.fromarray(levels), "PNG")))
    assert pixels[0, :, 0].tolist() == [0, 128, 255]


def test_a_decompression_bomb_header_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequest, match="too many pixels"):
        load_image(png_header_only(100_000, 100_000))  # 10 gigapixels in a few bytes: Pillow's own guard


def test_more_pixels_than_max_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(InvalidRequest, match="is 8000x6000, more than the limit of 40000000 pixels"):
        load_image(png_header_only(8_000, 6_000))
    with pytest.raises(InvalidRequest, match="is 100x100, more than the limit of 5000 pixels"):
        load_image(encode(solid(RED, (100, 100)), "PNG"), max_pixels=5_000)


@pytest.mark.parametrize(
    ("format", "mode", "size", "kept"),
    [
        ("PNG", "RGB", (4000, 3800), (2000, 1900)),  # reduced by 2 after decoding
        ("PNG", "P", (5400, 5400), (1800, 1800)),  # a palette image: reduced by 3 as RGB
        ("PNG", "RGBA", (3584, 4000), (1792, 2000)),
        ("JPEG", "RGB", (6000, 4000), (3000, 2000)),  # decoded at half size (draft mode)
        ("PNG", "RGB", (3000, 1000), (3000, 1000)),  # its shorter side is needed whole
    ],
)
def test_a_large_image_is_kept_only_as_large_as_a_frame_needs(
    format: str, mode: str, size: tuple[int, int], kept: tuple[int, int]
) -> None:
    color = (40, 120, 200, 255) if mode == "RGBA" else 7 if mode == "P" else (40, 120, 200)
    image = load_image(encode(solid(color, size, mode), format))
    assert image.size == kept and image.mode == "RGB"
    assert min(image.size) >= min(FRAME_SIDE, *size)
    expected = np.asarray(solid(color, (1, 1), mode).convert("RGB"))[0, 0]
    assert np.abs(np.asarray(fit_cover(image, 1792, 1024)).astype(int) - expected).max() <= 4


def test_a_broken_image_is_a_clear_400() -> None:
    truncated = encode(solid(RED, (64, 64)), "PNG")[:60]
    with pytest.raises(InvalidRequest, match="could not be decoded as a PNG image") as caught:
        load_image(truncated, param="image")
    assert caught.value.param == "image"


# --- fit_cover -----------------------------------------------------------------------------------


def test_fit_cover_of_the_same_size_is_the_centre_crop() -> None:
    rng = np.random.default_rng(7)
    source = rng.integers(0, 256, (200, 400, 3), dtype=np.uint8)
    fitted = fit_cover(Image.fromarray(source), 100, 200)
    assert fitted.shape == (200, 100, 3) and fitted.dtype == np.uint8
    assert np.abs(fitted.astype(int) - source[:, 150:250]).max() <= 1


def test_fit_cover_keeps_a_circle_round_for_a_portrait_target() -> None:
    landscape = Image.new("RGB", (320, 180), "white")
    ImageDraw.Draw(landscape).ellipse((120, 50, 200, 130), fill="black")  # 80 px across, centred
    fitted = fit_cover(landscape, 180, 320)
    assert fitted.shape == (320, 180, 3)
    rows, columns = np.nonzero(fitted[:, :, 0] < 128)
    width, height = columns.max() - columns.min() + 1, rows.max() - rows.min() + 1
    assert abs(width - height) <= 2
    assert abs(height - 80 * 320 / 180) <= 3  # scaled by 16/9, the factor that covers the height
    assert abs((columns.min() + columns.max()) / 2 - 89.5) <= 1.5  # still centred


def test_fit_cover_scales_when_the_aspect_already_matches_and_converts_to_rgb() -> None:
    fitted = fit_cover(solid((0, 255, 0, 255), (400, 200), mode="RGBA"), 100, 50)
    assert fitted.shape == (50, 100, 3)
    assert (fitted == (0, 255, 0)).all()


def test_fit_cover_refuses_an_empty_target() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        fit_cover(solid(RED), 0, 10)


# --- save_reference ------------------------------------------------------------------------------


def test_save_reference_writes_a_lossless_png(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (36, 64, 3), dtype=np.uint8)
    path = save_reference(pixels, tmp_path / "task" / "reference.png")
    assert path == tmp_path / "task" / "reference.png"
    assert sniff(path.read_bytes()) == "png"
    with Image.open(path) as written:
        assert np.array_equal(np.asarray(written), pixels)
    assert [p.name for p in path.parent.iterdir()] == ["reference.png"]


def test_save_reference_refuses_anything_but_rgb_uint8(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uint8"):
        save_reference(np.zeros((4, 4, 4), dtype=np.uint8), tmp_path / "x.png")
    with pytest.raises(ValueError, match="uint8"):
        save_reference(np.zeros((4, 4, 3), dtype=np.float32), tmp_path / "x.png")
