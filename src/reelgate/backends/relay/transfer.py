"""Downloading a finished job's files into the task's working directory, for reelgate to re-host.

Upstream links expire, so a result is only a result once its bytes are here. A link that answers
404, an HTML page or too many bytes is no video: the task fails rather than completing with a dead link.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError
from reelgate.errors import GenerationError

log = logging.getLogger(__name__)

#: Content types an error page comes with; a video or image never does.
_NOT_MEDIA = ("text/", "application/json", "application/xml")


async def fetch_video(exchange: Exchange, urls: tuple[str, ...], target: Path) -> Path:
    """The video at the first of `urls` that delivers one; GenerationError when none does."""
    if not urls:
        raise GenerationError(
            "The upstream reported the video finished but gave no link to it.", code="upstream_result_unavailable"
        )
    error: UpstreamError | None = None
    for url in urls:
        try:
            return await exchange.upstream.retry.run(partial(_download, exchange, url, target), "download")
        except UpstreamError as exc:
            log.warning("upstream %s: result %s unusable: %s", exchange.upstream.name, url, exc.message)
            error = exc
    raise GenerationError(
        f"The upstream finished the video but it could not be downloaded ({error.message if error else ''}).",
        code="upstream_result_unavailable",
    )


async def fetch_thumbnail(exchange: Exchange, urls: tuple[str, ...], target: Path) -> Path | None:
    """The upstream's thumbnail as WebP if one downloads and decodes; None otherwise (the worker cuts one)."""
    for url in urls:
        try:
            image = await _download(exchange, url, target.with_name("thumbnail.download"))
            return await asyncio.to_thread(_as_webp, image, target)
        except UpstreamError as exc:
            log.info("upstream %s: thumbnail %s unusable: %s", exchange.upstream.name, url, exc.message)
    return None


def _as_webp(source: Path, target: Path) -> Path:
    """Re-encode whatever still the upstream sent (JPEG, PNG, WebP) as reelgate's WebP thumbnail; a WebP
    that decodes and is no larger than reelgate's is kept as it came (encoding one costs far more)."""
    from reelgate.media.encode import THUMBNAIL_LONG_SIDE, save_thumbnail

    try:
        with Image.open(source) as image:
            image.load()
            if _usable_as_is(image, THUMBNAIL_LONG_SIDE):
                return source.replace(target)
            frame = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise UpstreamError(f"the thumbnail is not an image ({exc})", retryable=False) from exc
    return save_thumbnail(frame, target)


def _usable_as_is(image: Image.Image, long_side: int) -> bool:
    """A still WebP within reelgate's thumbnail size: what re-encoding would make of it, but dearer."""
    return image.format == "WEBP" and max(image.size) <= long_side and not getattr(image, "is_animated", False)


async def _download(exchange: Exchange, url: str, target: Path) -> Path:
    limit = exchange.upstream.config.max_download_bytes
    part = target.with_name(target.name + ".part")
    async with exchange.stream("GET", url) as response:
        kind = response.headers.get("content-type", "").lower()
        if kind.startswith(_NOT_MEDIA):
            raise UpstreamError(f"the result link returned {kind.split(';')[0]}, not a file", retryable=False)
        size = 0
        with part.open("wb") as out:
            async for chunk in exchange.chunks(response):
                size += len(chunk)
                if size > limit:
                    raise UpstreamError(f"the result is larger than {limit} bytes", retryable=False)
                out.write(chunk)
    if size == 0:
        raise UpstreamError("the result link returned an empty file", retryable=True)
    part.replace(target)
    return target
