"""A whole procedural film: the storyboard, its painters and its soundtrack, frame by frame."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

import numpy as np

from reelgate.backends.base import EditSource, ExtendSource, RemixSource, VideoSpec
from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.cast import CastPainter, portraits
from reelgate.backends.procedural.edit import Repaint, repaint_board
from reelgate.backends.procedural.extension import extended, with_source_sound
from reelgate.backends.procedural.layers import Sprite
from reelgate.backends.procedural.opening import OpeningPainter, image_palette, load_opening, tinted
from reelgate.backends.procedural.remix import remix
from reelgate.backends.procedural.scene import ShotPainter
from reelgate.backends.procedural.script import Shot, Storyboard, plan, seed_for
from reelgate.backends.procedural.sound import soundtrack
from reelgate.media.join import frames_at_rate

T = TypeVar("T")


class Painter(Protocol):
    def paint(self, i: int) -> np.ndarray: ...


class Film:
    """`frames()` yields the RGB frames in order; `audio` holds exactly as many seconds of sound.

    With an `opening` image the first shot starts on it (see `opening.py`).
    """

    def __init__(
        self,
        board: Storyboard,
        width: int,
        height: int,
        fonts: FontFinder,
        *,
        audio_seed: int,
        opening: np.ndarray | None = None,
        lead: ExtendSource | None = None,
        cast: Sequence[Sprite] = (),
        repaint: Repaint | None = None,
    ) -> None:
        self.board = board
        self.width, self.height = width, height
        self.fonts = fonts
        self.opening = opening
        #: The characters' framed portraits, in front of every shot (`cast.py`).
        self.cast = cast
        self.audio = soundtrack(board, np.random.default_rng(audio_seed ^ 0xA0D10))
        #: The video an extension continues: its first `lead_frames` frames and sound are that video's.
        self.lead = lead
        self.lead_frames = lead.seconds * board.fps if lead else 0
        if lead is not None:
            self.audio = with_source_sound(self.audio, lead.video, self.lead_frames, board.fps)
        #: An edit's source video, re-painted shot by shot (`edit.py`); its sound replaces the soundtrack.
        self.repaint = repaint
        if repaint is not None:
            self.audio = repaint.sound(self.audio)

    @classmethod
    def of(cls, spec: VideoSpec, fonts: FontFinder) -> Film:
        """The film `spec` asks for: planned from its prompt, or for a remix from the parent's prompt and
        seed with the instruction applied (the soundtrack is then the parent's); opening on its image if any."""
        cast = portraits(spec.characters, spec.width, spec.height)
        if spec.edit_of is not None:
            return cls._edit(spec, spec.edit_of, fonts, cast)
        if spec.extend_of is not None:
            lead = spec.extend_of
            board = extended(lead, spec.prompt, spec.seed, spec.seconds - lead.seconds, spec.fps)
            audio_seed = seed_for(lead.prompt, lead.seed)
            return cls(board, spec.width, spec.height, fonts, audio_seed=audio_seed, lead=lead, cast=cast)
        source = spec.remix_of or RemixSource(spec.prompt, spec.seed)
        if spec.remix_of is None:
            board = plan(spec.prompt, spec.seed, spec.seconds, spec.fps)
        else:
            board = remix(spec.remix_of, spec.prompt, spec.seed, spec.seconds, spec.fps)
        opening = load_opening(spec.first_frame, spec.width, spec.height) if spec.first_frame else None
        if opening is not None:
            board = tinted(board, image_palette(opening))
        audio_seed = seed_for(source.prompt, source.seed)
        return cls(board, spec.width, spec.height, fonts, audio_seed=audio_seed, opening=opening, cast=cast)

    @classmethod
    def _edit(cls, spec: VideoSpec, source: EditSource, fonts: FontFinder, cast: Sequence[Sprite]) -> Film:
        """An edit keeps its source's timing: a known storyboard is changed as a remix changes it (with the
        source's soundtrack); otherwise the source's own frames are re-painted (`edit.py`)."""
        size = (spec.width, spec.height)
        if source.prompt is not None and source.seed is not None:
            board = remix(RemixSource(source.prompt, source.seed), spec.prompt, spec.seed, spec.seconds, spec.fps)
            return cls(board, *size, fonts, audio_seed=seed_for(source.prompt, source.seed), cast=cast)
        board = repaint_board(spec.prompt, spec.seed, spec.seconds, spec.fps)
        repaint = Repaint(source.video, *size, spec.fps, fonts)
        return cls(board, *size, fonts, audio_seed=seed_for(spec.prompt, spec.seed), cast=cast, repaint=repaint)

    def frames(self) -> Iterator[np.ndarray]:
        if self.lead is not None:
            yield from frames_at_rate(self.lead.video, self.board.fps, self.width, self.height, self.lead_frames)
        for shot in self.board.shots:
            if shot.end <= self.lead_frames:
                continue
            painter = self._painter(shot)
            for i in range(shot.frames):
                yield painter.paint(i)

    def poster(self) -> np.ndarray:
        """The frame the thumbnail shows: the middle of the first shot, caption in full."""
        shot = self.board.shots[0]
        return self._painter(shot).paint(shot.frames // 2)

    def _painter(self, shot: Shot) -> Painter:
        painter = self._backdrop(shot)
        return CastPainter(painter, self.cast, self.width, self.height, self.board.fps) if self.cast else painter

    def _backdrop(self, shot: Shot) -> Painter:
        if self.repaint is not None:
            return self.repaint.painter(shot)
        if shot.index == 0 and self.opening is not None:
            return OpeningPainter(shot, self.opening, self.board.fps, self.fonts)
        return ShotPainter(shot, self.width, self.height, self.board.fps, self.fonts)


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
