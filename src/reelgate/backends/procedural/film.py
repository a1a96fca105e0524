"""A whole procedural film: the storyboard, its painters and its soundtrack, frame by frame."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

import numpy as np

from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.scene import ShotPainter
from reelgate.backends.procedural.script import Storyboard, plan, seed_for
from reelgate.backends.procedural.sound import soundtrack

T = TypeVar("T")


class Film:
    """`frames()` yields the RGB frames in order; `audio` holds exactly as many seconds of sound."""

    def __init__(self, prompt: str, seed: int, seconds: int, width: int, height: int, fps: int, fonts: FontFinder):
        self.board: Storyboard = plan(prompt, seed, seconds, fps)
        self.width, self.height = width, height
        self.fonts = fonts
        self.audio = soundtrack(self.board, np.random.default_rng(seed_for(prompt, seed) ^ 0xA0D10))

    def frames(self) -> Iterator[np.ndarray]:
        for shot in self.board.shots:
            painter = ShotPainter(shot, self.width, self.height, self.board.fps, self.fonts)
            for i in range(shot.frames):
                yield painter.paint(i)

    def poster(self) -> np.ndarray:
        """The frame the thumbnail shows: the middle of the first shot, caption in full."""
        shot = self.board.shots[0]
        painter = ShotPainter(shot, self.width, self.height, self.board.fps, self.fonts)
        return painter.paint(shot.frames // 2)


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run `items` in a thread up to `depth` ahead, so painting overlaps encoding (NumPy and x264 both
    release the GIL). An exception in the thread is raised here; closing this generator stops it."""
    ready: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                ready.put(("item", item))
            ready.put(("end", None))
        except BaseException as exc:  # handed over to the consumer, who raises it
            ready.put(("error", exc))

    thread = threading.Thread(target=produce, name="reelgate-paint", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()
