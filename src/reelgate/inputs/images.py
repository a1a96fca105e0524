"""A client's reference image, from bytes to the RGB pixels of a video's first frame.

    bytes ──sniff──> format ──load_image──> RGB Image ──fit_cover──> (height, width, 3) uint8 ──save_reference──> PNG

A small file can claim a huge bitmap, so `load_image` decodes no more than a video frame can use: a
JPEG at 1/2, 1/4 or 1/8 of its size (draft mode), any other format reduced by a whole factor right
after decoding, before any conversion copies it; its shorter side stays at least `FRAME_SIDE`.

The format comes from the bytes' magic numbers, never from a declared media type, and Pillow is
only allowed to use that one decoder. Every problem with the client's image is an `InvalidRequest`
naming the request parameter; a wrong argument from our own code stays a `ValueError` (a 500).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from reelgate.errors import InvalidRequest, RequestTooLarge

PARAM = "input_reference"

#: The longest side of any frame reelgate makes (1792x1024): an image whose shorter side is this long
#: covers every frame size without upscaling, so no more of it is ever decoded or kept.
FRAME_SIDE = 1792

#: Transparent pixels are composited on white, the way a browser shows them on a plain page.
BACKGROUND = (255, 255, 255)

#: Pillow's name for each format `sniff` recognises.
_PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "gif": "GIF"}

#: Pillow's errors for an image it cannot read: bad headers, truncated data.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError)
#: Pillow's own guard, for a header claiming far more than Image.MAX_IMAGE_PIXELS (the warning only
#: where warnings are errors, as in the tests).
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def sniff(data: bytes, *, param: str = PARAM) -> str:
    """The image format from its magic bytes: "jpeg", "png", "webp" or "gif".

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if not data:
        raise InvalidRequest(f"{param} is empty.", param=param)
    raise InvalidRequest(f"{param} is not a JPEG, PNG, WebP or GIF image.", param=param)


def decode_data_uri(uri: str, max_bytes: int, *, param: str = PARAM) -> bytes:
    """The image bytes inside a base64 `data:image/...;base64,...` URI, sniffed to be an image.

    The declared media type must be `image/*`, but the actual format is what `sniff` says it is.
    Missing base64 padding is tolerated; anything else that is not base64 is refused.
    """
    header, comma, payload = uri.partition(",")
    if not header.lower().startswith("data:") or not comma:
        raise InvalidRequest(f"{param} is not a data URI.", param=param)
    media_type, *parameters = header[len("data:") :].split(";")
    if not media_type.strip().lower().startswith("image/"):
        shown = media_type.strip() or "no media type"
        raise InvalidRequest(f"{param} data URI must have an image/* media type, not {shown}.", param=param)
    if "base64" not in (part.strip().lower() for part in parameters):
        raise InvalidRequest(f"{param} data URI must be base64-encoded (data:image/png;base64,...).", param=param)
    # Refuse before decoding: 4 base64 characters carry 3 bytes, plus slack for whitespace.
    if len(payload) > (max_bytes // 3 + 1) * 4 + 1024:
        raise _too_large(max_bytes, param)
    data = _b64decode(payload, param)
    if len(data) > max_bytes:
        raise _too_large(max_bytes, param)
    sniff(data, param=param)
    return data


def _b64decode(payload: str, param: str) -> bytes:
    compact = "".join(payload.split())
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{param} data URI is not valid base64.", param=param) from exc


def _too_large(max_bytes: int, param: str) -> RequestTooLarge:
    return RequestTooLarge(f"{param} image is larger than the limit of {max_bytes} bytes.", param=param)


def load_image(data: bytes, max_pixels: int = 40_000_000, *, param: str = PARAM) -> Image.Image:
    """Decode an image to RGB: EXIF orientation applied, a GIF's first frame, transparency on white.

    The size in the header is checked against `max_pixels` before any pixel is decoded, so a small
    file that claims to be huge (a decompression bomb) costs nothing; a large one is decoded at, or
    reduced to, the size a frame needs (its shorter side at least `FRAME_SIDE`).
    """
    kind = sniff(data, param=param)
    try:
        with Image.open(io.BytesIO(data), formats=[_PILLOW_FORMATS[kind]]) as opened:
            _check_pixels(opened, max_pixels, param)
            _draft(opened)
            opened.load()
            return _to_rgb(ImageOps.exif_transpose(_reduced(opened)))
    except _BOMB_ERRORS as exc:
        raise InvalidRequest(f"{param} image has too many pixels (the limit is {max_pixels}).", param=param) from exc
    except _DECODE_ERRORS as exc:
        raise InvalidRequest(f"{param} could not be decoded as a {_FORMAT_NAMES[kind]} image.", param=param) from exc


def _check_pixels(image: Image.Image, max_pixels: int, param: str) -> None:
    width, height = image.size
    if width < 1 or height < 1:
        raise InvalidRequest(f"{param} image has no pixels ({width}x{height}).", param=param)
    if width * height > max_pixels:
        raise InvalidRequest(
            f"{param} image is {width}x{height}, more than the limit of {max_pixels} pixels.", param=param
        )


def _draft(image: Image.Image) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale where its shorter side still covers FRAME_SIDE."""
    scale = FRAME_SIDE / min(image.size)
    if image.format == "JPEG" and scale < 0.5:
        image.draft(image.mode, (math.ceil(image.width * scale), math.ceil(image.height * scale)))


def _reduced(image: Image.Image) -> Image.Image:
    """The decoded image shrunk by the largest whole factor that keeps its shorter side >= FRAME_SIDE."""
    factor = min(image.size) // FRAME_SIDE
    if factor < 2:
        return image
    try:
        return image.reduce(factor)
    except ValueError:  # a mode `reduce` does not take (palette, 1-bit, 16-bit): reduce its RGB form
        return _to_rgb(image).reduce(factor)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):
        # 16-bit greyscale: Pillow's own conversion clips to 255 instead of scaling.
        image = Image.fromarray((np.asarray(image, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def fit_cover(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Scale `image` to cover `width`x`height` and crop the centre: never distorted, never letterboxed.

    Returns a (height, width, 3) uint8 array. A 1920x1080 image fitted to 720x1280 keeps its middle
    608x1080 columns, scaled up to 720x1280.
    """
    if width < 1 or height < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    fitted = rgb.resize((width, height), Image.Resampling.LANCZOS, box=_centre_box(rgb.size, width / height))
    return np.array(fitted, dtype=np.uint8)


def _centre_box(size: tuple[int, int], aspect: float) -> tuple[float, float, float, float]:
    """The largest centred box of `size` whose width/height is `aspect`."""
    width, height = size
    if width / height > aspect:
        crop = height * aspect
        return ((width - crop) / 2, 0.0, (width + crop) / 2, float(height))
    crop = width / aspect
    return (0.0, (height - crop) / 2, float(width), (height + crop) / 2)


def save_reference(image_array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write a (height, width, 3) uint8 array as a PNG, lossless so a first frame can match it exactly.

    The file appears complete or not at all (written aside, then renamed).
    """
    if image_array.dtype != np.uint8 or image_array.ndim != 3 or image_array.shape[2] != 3:
        raise ValueError(f"expected a (height, width, 3) uint8 array, got {image_array.shape} {image_array.dtype}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    Image.fromarray(image_array).save(partial, format="PNG")
    partial.replace(target)
    return target
