"""Procedural render time against the encoder's own floor.

For 10 s and 15 s films at 720p and at the catalog's HD size (portrait), renders the film with the
real backend and, separately, encodes the same number of plain frames (one flat colour, silent
soundtrack of the same length) with the same `Mp4Writer` settings. Prints the realtime factor
(seconds of video per second of wall time; above 1 is faster than realtime) and the ratio of the
render time to that encode floor. x264's cost depends on the picture, so it also encodes the film's
own frames, painted beforehand into memory (about 2 GB at 1024x1792 for 15 s): the ratio to that
shows what painting adds beyond encoding the same pictures.

    .venv/bin/python bench/render.py
    .venv/bin/python bench/render.py --sizes 720x1280 --seconds 15 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from reelgate.backends.base import Orientation, VideoSpec
from reelgate.backends.procedural import ProceduralBackend
from reelgate.backends.procedural.film import Film
from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame

FPS = 24


def bench_spec(seconds: int, width: int, height: int) -> VideoSpec:
    return VideoSpec(
        prompt="中国街头吃西瓜，夕阳下的红色汽车，雨中的蓝色海浪",
        orientation=Orientation.PORTRAIT if height > width else Orientation.LANDSCAPE,
        seconds=seconds,
        width=width,
        height=height,
        fps=FPS,
        seed=7,
        model="bench",
    )


def time_render(backend: ProceduralBackend, seconds: int, width: int, height: int, workdir: Path) -> float:
    started = time.perf_counter()
    backend.render(bench_spec(seconds, width, height), workdir, lambda _percent: None)
    return time.perf_counter() - started


def time_content(backend: ProceduralBackend, seconds: int, width: int, height: int, workdir: Path) -> float:
    """Encoding the film's own frames and soundtrack, painted beforehand: the encoder's share."""
    film = Film.of(bench_spec(seconds, width, height), backend.fonts)
    frames = list(film.frames())
    started = time.perf_counter()
    with Mp4Writer(workdir / "content.mp4", width, height, FPS, preset=backend.preset) as writer:
        for index, frame in enumerate(frames):
            writer.write(frame, film.audio[samples_for_frame(index, FPS)])
    return time.perf_counter() - started


def time_plain(seconds: int, width: int, height: int, workdir: Path, preset: str) -> float:
    """The floor: the same encoder settings fed frames that cost nothing to make."""
    frame = np.full((height, width, 3), (40, 90, 160), dtype=np.uint8)
    audio = np.zeros((seconds * SAMPLE_RATE, 2), dtype=np.float32)
    started = time.perf_counter()
    with Mp4Writer(workdir / "plain.mp4", width, height, FPS, preset=preset) as writer:
        for index in range(seconds * FPS):
            writer.write(frame, audio[samples_for_frame(index, FPS)])
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["720x1280", "1024x1792"], help="WIDTHxHEIGHT, portrait")
    parser.add_argument("--seconds", nargs="+", type=int, default=[10, 15])
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the median is printed")
    args = parser.parse_args()

    backend = ProceduralBackend()
    print(
        f"{'size':>10} {'secs':>4} {'render s':>9} {'x realtime':>10} {'plain s':>8} {'ratio':>6}"
        f" {'content s':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        for size in args.sizes:
            width, height = (int(n) for n in size.split("x"))
            for seconds in args.seconds:
                render = statistics.median(
                    time_render(backend, seconds, width, height, workdir) for _ in range(args.repeat)
                )
                plain = statistics.median(
                    time_plain(seconds, width, height, workdir, backend.preset) for _ in range(args.repeat)
                )
                content = statistics.median(
                    time_content(backend, seconds, width, height, workdir) for _ in range(args.repeat)
                )
                print(
                    f"{size:>10} {seconds:>4} {render:>9.2f} {seconds / render:>10.2f} {plain:>8.2f}"
                    f" {render / plain:>6.2f} {content:>9.2f} {render / content:>6.2f}"
                )


if __name__ == "__main__":
    main()
