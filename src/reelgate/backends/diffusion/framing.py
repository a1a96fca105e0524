"""Sizes: generate at the model's native pixel budget in the requested aspect, then scale to the
requested size. Never distorted: the output covers the frame and the rounding sliver is cropped.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image


def generation_size(requested: tuple[int, int], native: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The size nearest `native`'s area with `requested`'s aspect, both sides multiples of `multiple`.

    >>> generation_size((1024, 1792), (480, 832), 16)
    (480, 832)
    >>> generation_size((1280, 720), (832, 480), 16)
    (848, 480)
    """
    area = native[0] * native[1]
    aspect = requested[0] / requested[1]
    width = max(multiple, round(math.sqrt(area * aspect) / multiple) * multiple)
    height = max(multiple, round(math.sqrt(area / aspect) / multiple) * multiple)
    return width, height


def cover(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """`frame` (RGB, uint8) scaled to cover `width` x `height` and centre-cropped to it."""
    rows, cols = frame.shape[:2]
    if (cols, rows) == (width, height):
        return frame
    return np.asarray(cover_image(Image.fromarray(frame), width, height))


def cover_image(image: Image.Image, width: int, height: int) -> Image.Image:
    scale = max(width / image.width, height / image.height)
    scaled = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    resized = image.resize(scaled, Image.Resampling.LANCZOS)
    left, top = (scaled[0] - width) // 2, (scaled[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """A pipeline's float frames in [0, 1] as RGB bytes."""
    return (np.clip(frames, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
