"""An extension on a diffusers model: the source video, then a continuation from its last frame.

The continuation is an ordinary render of the new seconds whose first shot starts on the source's
last frame through the image-to-video pipeline (as `continue` shots are chained); the source's own
frames and sound are then joined before it, so the result's first seconds ARE the source.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PIL import Image

from reelgate.backends.base import GeneratedVideo, ProgressCallback, VideoSpec
from reelgate.backends.diffusion.render import Job, render
from reelgate.media.join import join, last_frame

#: Of the progress, what the continuation's render takes; the join takes the rest.
RENDER_SHARE = 95


def render_extension(job: Job, spec: VideoSpec, workdir: Path, on_progress: ProgressCallback) -> GeneratedVideo:
    source = spec.extend_of
    assert source is not None
    opening = workdir / "source-last-frame.png"
    Image.fromarray(last_frame(source.video)).save(opening)
    parts = workdir / "continuation"
    parts.mkdir(exist_ok=True)
    continuation = replace(spec, seconds=spec.seconds - source.seconds, first_frame=opening, extend_of=None)
    made = render(job, continuation, parts, lambda percent: on_progress(percent * RENDER_SHARE // 100))
    video = join(
        [source.video, made.video],
        workdir / "video.mp4",
        width=spec.width,
        height=spec.height,
        fps=spec.fps,
        seconds=spec.seconds,
        preset=job.preset,
    )
    on_progress(100)
    return GeneratedVideo(video=video)
