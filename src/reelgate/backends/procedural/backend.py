"""The procedural backend: an offline preview renderer, not an AI model.

It turns the prompt into a short film with real cuts, motion, colours from the prompt's words,
captions and a soundtrack, on any CPU, so reelgate works end to end on a fresh machine. It opens on
the spec's first frame when it has one (`opening.py`) and remixes a parent video (`remix.py`). With
`processes` it renders in child processes (`process.py`), else in a thread of the calling process.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.film import Film, prefetch
from reelgate.backends.procedural.process import RenderCancelled, RenderPool, StopSignal
from reelgate.media.encode import Mp4Writer, samples_for_frame, save_thumbnail
from reelgate.media.probe import probe

__all__ = ["ProceduralBackend", "RenderCancelled"]


class ProceduralBackend:
    name = "procedural"
    #: Continues completed videos (`POST /v1/videos/extensions`; see `extension.py`).
    can_extend = True
    #: Edits videos (`POST /v1/videos/edits`): a remix of a known storyboard, else its frames re-painted (`edit.py`).
    can_edit = True
    #: Shows characters (`POST /v1/videos/characters`) as framed portraits in every shot (`cast.py`).
    takes_characters = True

    def __init__(self, preset: str = "veryfast", font_path: Path | None = None, *, processes: int = 0) -> None:
        self.preset = preset
        self.fonts = FontFinder(font_path)
        #: The child processes renders run in; None renders in a thread of this process.
        self.pool = None
        if processes:
            renderer = partial(ProceduralBackend, preset, font_path)
            self.pool = RenderPool(processes, renderer, preload=[__name__])

    async def generate(self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
        if self.pool is not None:
            # The checkpoint's callback cannot cross a process boundary, and this renderer keeps no notes.
            return await self.pool.render(replace(spec, checkpoint=None), workdir, on_progress)
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self.render, spec, workdir, on_progress, stop)
        except asyncio.CancelledError:
            stop.set()  # the thread notices at its next frame and deletes its partial file
            raise

    async def close(self) -> None:
        """Stop the render processes (at shutdown)."""
        if self.pool is not None:
            await self.pool.close()

    def render(
        self, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback, stop: StopSignal | None = None
    ) -> GeneratedVideo:
        """Render `spec` into `workdir/video.mp4` and `workdir/thumbnail.webp` (blocking), and probe the video
        here, in the render process: opening it with PyAV costs more than the rest of a small video's
        completion, which the server's event loop would otherwise wait behind."""
        film = Film.of(spec, self.fonts)
        total = film.board.frames
        video = workdir / "video.mp4"
        reported = -1
        with Mp4Writer(video, spec.width, spec.height, spec.fps, preset=self.preset) as writer:
            for index, frame in enumerate(prefetch(film.frames(), depth=3)):
                if stop is not None and stop.is_set():
                    raise RenderCancelled
                writer.write(frame, film.audio[samples_for_frame(index, spec.fps)])
                percent = (index + 1) * 100 // total
                if percent != reported:
                    on_progress(percent)
                    reported = percent
        thumbnail = save_thumbnail(film.poster(), workdir / "thumbnail.webp")
        return GeneratedVideo(video=video, thumbnail=thumbnail, probed=probe(video))
