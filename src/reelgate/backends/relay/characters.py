"""Characters on an OpenAI Videos upstream: each one created there from its key frame, then named by the
upstream's own id in the create call's `characters` array (the upstream knows nothing of reelgate's ids).

    POST {base}/videos/characters    multipart `name` and `video` (a short clip of the key frame)

Only the `openai-videos` kind takes characters; other kinds refuse them at admission (`takes_characters`).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from reelgate.backends.base import CharacterRef
from reelgate.backends.relay.documents import job_object
from reelgate.backends.relay.exchange import Exchange
from reelgate.backends.relay.faults import UpstreamError

#: The upstream kinds whose create call takes `characters`.
TAKES_CHARACTERS = frozenset({"openai-videos"})
#: The clip a character is created from upstream: its key frame held still, this long, at this rate.
CLIP_SECONDS, CLIP_FPS = 2, 8


async def upstream_characters(exchange: Exchange, characters: tuple[CharacterRef, ...]) -> list[dict[str, str]]:
    """`[{"id": ...}]`: each character created on the upstream, in order."""
    return [{"id": await _create(exchange, character)} for character in characters]


async def _create(exchange: Exchange, character: CharacterRef) -> str:
    clip = await asyncio.to_thread(still_clip, character.frame)
    body, _ = await exchange.json(
        "POST",
        exchange.upstream.url("videos/characters"),
        data={"name": character.name},
        files={"video": ("character.mp4", clip, "video/mp4")},
    )
    found = (job_object(body) or {}).get("id")
    if not isinstance(found, str) or not found:
        raise UpstreamError("the upstream's character answer has no id", retryable=False)
    return found


def still_clip(frame: Path) -> bytes:
    """An MP4 of the image at `frame` held still for `CLIP_SECONDS` (H.264 wants even sides)."""
    from reelgate.media.encode import Mp4Writer  # PyAV loads only where a video is made

    with Image.open(frame) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    rgb = np.ascontiguousarray(rgb[:height, :width])
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "character.mp4"
        with Mp4Writer(path, width, height, CLIP_FPS) as writer:
            for _ in range(CLIP_SECONDS * CLIP_FPS):
                writer.write(rgb)
        return path.read_bytes()
