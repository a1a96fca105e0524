"""A request's reference image (image-to-video): from an upload, a data URI or a URL, to pixels.

Decoding briefly holds a full bitmap, so images decode on a pool of `Settings.image_decode_slots`
threads of their own: that many at once in a process, the others queued. Few threads also means few
malloc arenas, each keeping the memory its last decode freed: with the shared pool, 8 decodes left
8 arenas of ~160 MB behind.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from reelgate.errors import RequestTooLarge
from reelgate.settings import Settings

#: The process's decoding threads, made on first use (the first caller's settings size it).
_decoder: ThreadPoolExecutor | None = None


async def reference_image(value: str | bytes, settings: Settings, param: str) -> Image.Image:
    """Decode an uploaded image, or fetch (SSRF-safe) a URL or data URI and decode it; 400 if unusable.

    An upload larger than `image_max_bytes` is a 413, like a data URI or a fetched image would be.
    """
    from reelgate.inputs.fetch import FetchPolicy, resolve_reference
    from reelgate.inputs.images import load_image

    if isinstance(value, bytes) and len(value) > settings.image_max_bytes:
        raise RequestTooLarge(
            f"{param} image is larger than the limit of {settings.image_max_bytes} bytes.", param=param
        )
    if isinstance(value, str):
        policy = FetchPolicy(
            max_bytes=settings.image_max_bytes,
            timeout=settings.image_fetch_timeout,
            allow=tuple(settings.image_fetch_allow),
        )
        data = await resolve_reference(value, policy)
    else:
        data = value
    decoder = _decoding_threads(settings.image_decode_slots)
    return await asyncio.get_running_loop().run_in_executor(decoder, lambda: load_image(data, param=param))


def _decoding_threads(count: int) -> ThreadPoolExecutor:
    global _decoder
    if _decoder is None:
        _decoder = ThreadPoolExecutor(max_workers=count, thread_name_prefix="reelgate-image")
    return _decoder
