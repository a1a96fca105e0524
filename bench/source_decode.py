"""What decoding a source video in a killable child costs: `SourceFrames` (child + pipe) against the same
decode in this process (`timed_frames`), for a 10 s 1280x720 clip at 24 fps read at two render sizes.

    .venv/bin/python bench/source_decode.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from reelgate.media.encode import Mp4Writer
from reelgate.media.source import SourceFrames, timed_frames

FPS, SECONDS = 24, 10


def make_clip(path: Path, width: int, height: int) -> Path:
    """Frames whose colour changes each frame, so none is a repeat the encoder could skip."""
    with Mp4Writer(path, width, height, FPS, preset="ultrafast") as writer:
        for index in range(FPS * SECONDS):
            writer.write(np.full((height, width, 3), (index % 256, 100, 50), np.uint8))
    return path


def in_process(clip: Path, width: int, height: int) -> float:
    started = time.perf_counter()
    frames = timed_frames(clip, FPS, width, height)
    for _ in range(FPS * SECONDS):
        next(frames)
    return time.perf_counter() - started


def in_child(clip: Path, width: int, height: int) -> float:
    started = time.perf_counter()
    source = SourceFrames(clip, FPS, width, height)
    for index in range(FPS * SECONDS):
        source.frame(index)
    source.close()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        clip = make_clip(Path(folder) / "clip.mp4", 1280, 720)
        for width, height in ((1280, 720), (256, 144)):
            here, child = in_process(clip, width, height), in_child(clip, width, height)
            print(f"{FPS * SECONDS} frames at {width}x{height}: in process {here:.2f} s, in a child {child:.2f} s")


if __name__ == "__main__":
    main()
