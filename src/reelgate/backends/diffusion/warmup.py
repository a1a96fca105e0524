"""The runs a backend will be asked for, worked out from the catalog, and the warm-up over them.

A compiled transformer is compiled again for every new input shape: a 14B model pays tens of seconds
for it, in whichever request brings the shape first. The catalog says every (size, duration, frame
rate) a backend serves, hence every (generation size, frame count) of its pipeline runs; the warm-up
makes each of them once, with two steps, at start-up. The memory planner sizes for the largest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from reelgate.backends.diffusion import framing, shots
from reelgate.backends.diffusion.config import DiffusionConfig
from reelgate.backends.diffusion.memory import Shape

if TYPE_CHECKING:
    from reelgate.backends.diffusion.render import Job
    from reelgate.catalog import ModelEntry

#: Steps of each warm-up run: the first compiles, the second checks that the graph is reused.
WARMUP_STEPS = 2


@dataclass(frozen=True)
class Served:
    """One kind of video a catalog entry may ask for."""

    width: int
    height: int
    seconds: int
    fps: int


def served_by(entries: Iterable[ModelEntry]) -> tuple[Served, ...]:
    """Every size, duration and frame rate the entries allow (the Videos API's choices included)."""
    found = {
        Served(width, height, seconds, entry.fps)
        for entry in entries
        for width, height in entry.allowed_sizes
        for seconds in entry.allowed_seconds
    }
    return tuple(sorted(found, key=dataclasses.astuple))


def run_shapes(config: DiffusionConfig, served: Iterable[Served], side: int, frame_step: int) -> tuple[Shape, ...]:
    """The distinct pipeline runs behind `served`; with nothing served, full-length runs at the native sizes."""
    found: set[Shape] = set()
    for video in served:
        size = framing.generation_size(
            (video.width, video.height), config.native_size(video.height > video.width), side
        )
        runs = shots.plan(
            "",
            0,
            seconds=video.seconds,
            fps=video.fps,
            native_fps=config.fps_native,
            max_frames=config.frames_per_shot,
            frame_step=frame_step,
        )
        found.update(Shape(*size, run.frames) for run in runs)
    if not found:
        found = {Shape(*config.native_size(portrait), config.frames_per_shot) for portrait in (True, False)}
    return tuple(sorted(found, key=dataclasses.astuple))


def warm_up(job: Job, shapes: Iterable[Shape]) -> None:
    """One short run per shape, through the text pipeline and the image pipeline when there is one."""
    from reelgate.backends.diffusion.progress import Progress
    from reelgate.backends.diffusion.render import generate_shot

    short = dataclasses.replace(job, config=dataclasses.replace(job.config, steps=min(job.config.steps, WARMUP_STEPS)))
    for shape in shapes:
        shot = shots.Shot(0, "warm-up", 0, 1, shape.frames, 0)
        size = (shape.width, shape.height)
        generate_shot(short, shot, size, None, Progress(lambda _: None, 1))
        if job.loaded.image_pipeline is not None:
            grey = Image.new("RGB", size, (128, 128, 128))
            generate_shot(short, shot, size, grey, Progress(lambda _: None, 1))
