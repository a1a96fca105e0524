"""A request's reference image (image-to-video): from an upload, a data URI or a URL, to pixels."""

from __future__ import annotations

import asyncio

from PIL import Image

from reelgate.settings import Settings


async def reference_image(value: str | bytes, settings: Settings, param: str) -> Image.Image:
    """Decode an uploaded image, or fetch (SSRF-safe) a URL or data URI and decode it; 400 if unusable."""
    from reelgate.inputs.fetch import FetchPolicy, resolve_reference
    from reelgate.inputs.images import load_image

    if isinstance(value, str):
        policy = FetchPolicy(
            max_bytes=settings.image_max_bytes,
            timeout=settings.image_fetch_timeout,
            allow=tuple(settings.image_fetch_allow),
        )
        data = await resolve_reference(value, policy)
    else:
        data = value
    return await asyncio.to_thread(load_image, data, param=param)
