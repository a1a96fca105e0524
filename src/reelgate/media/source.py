"""Reading a source video for an edit or an extension: its frames in another video's timing and size,
and its sound.

Every backend that renders from a source video (procedural, diffusers) reads it through here. The source
may be a client's upload that passed admission's probe yet is hostile to a full decode (frames far larger
or far more than its header states, a stream that decodes pathologically slowly), so FFmpeg decodes it
only in a child process (`media/source_reader.py`) whose address space is capped and which checks every
frame against the upload caps; `SourceReader` reads its output with a time limit and kills it past that:

    child: decode ──check (pixels, frame count)──> upright, cover-fitted RGB ──pipe──> SourceReader ──> frame(k)

What crosses the pipe is already at the render's size, one frame at a time (each scaled while it is
converted to RGB, so a 4K frame is never copied whole); the sound is resampled to 48 kHz stereo and cut
where the render needs it to end. A frame or packet that cannot be decoded ends the source there: the
frames before it are the video. A decode past its time limit or the caps fails the task
(`GenerationError`) with a message saying why, and the worker goes on to its next task.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import math
import select
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from reelgate.errors import GenerationError
from reelgate.inputs.video_probe import DEMUXER, MAX_FPS, MAX_PIXELS, MAX_SIDE
from reelgate.media.encode import SAMPLE_RATE

#: Time a decode may take before it is stopped: a start (the child's imports, FFmpeg's first frames), then
#: so much per second of source read. One core decodes a second of 1080p H.264 in well under a second, so
#: only a file built to be slow (or a machine far past its capacity) runs out of it.
DECODE_START_SECONDS = 15.0
DECODE_SECONDS_PER_SECOND = 5.0

#: How long a child that has closed its output may take to exit and say why.
_EXIT_GRACE_SECONDS = 5.0
#: The pipe's buffer (Linux's default ceiling for an unprivileged process, /proc/sys/fs/pipe-max-size).
_PIPE_BYTES = 1024 * 1024
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class SourceReader:
    """A child process decoding `video` (`python -m reelgate.media.source_reader MODE VIDEO ARGS`), read
    with a time limit: `read(size, seconds)` may wait `start` seconds in all, plus `DECODE_SECONDS_PER_SECOND`
    for each second of source read so far. Only the time spent waiting counts, so a render that takes
    minutes between frames never runs the decode out of time.

    Past the limit, or when the child fails, it is killed and `read` raises `GenerationError`.
    """

    def __init__(self, video: Path, mode: str, *args: object, start: float = DECODE_START_SECONDS) -> None:
        command = [sys.executable, "-m", "reelgate.media.source_reader", mode, str(video), *map(str, args)]
        self._child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        with contextlib.suppress(OSError):  # a wider pipe: a frame crosses in fewer reads (Linux only)
            fcntl.fcntl(self._child.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)  # type: ignore[union-attr]
        self._allowed, self._waited = start, 0.0
        # A reader dropped without `close()` (a render stopped between frames) still ends its child.
        self._finalizer = weakref.finalize(self, _end, self._child)

    def read(self, size: int, seconds: float) -> bytearray:
        """Exactly `size` bytes of the child's output, which cover `seconds` of the source."""
        self._allowed += seconds * DECODE_SECONDS_PER_SECOND
        out = bytearray(size)
        view, got = memoryview(out), 0
        while got < size:
            got += self._chunk(view[got:])
        return out

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _chunk(self, into: memoryview) -> int:
        """Bytes read into `into` (at least one), waiting within the time limit."""
        pipe = self._child.stdout
        assert isinstance(pipe, io.FileIO)
        started = time.monotonic()
        ready, _, _ = select.select([pipe], [], [], max(0.0, self._allowed - self._waited))
        count = pipe.readinto(into) if ready else None
        self._waited += time.monotonic() - started
        if count is None:
            self.close()
            raise GenerationError(
                f"The source video could not be decoded in {self._allowed:.0f} seconds "
                "(it is damaged or built to decode slowly)."
            )
        if not count:
            raise GenerationError(f"The source video could not be decoded: {self._failure()}.")
        return count

    def _failure(self) -> str:
        """Why the child stopped: the line it wrote, else how it ended (killed past its memory cap)."""
        try:
            self._child.wait(_EXIT_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self._child.kill()
        assert self._child.stderr is not None
        said = self._child.stderr.read().decode(errors="replace").strip()
        self.close()
        return said or "the decoder stopped (it needed more memory than a video of this size should)"


def _end(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait()
    for pipe in (child.stdout, child.stderr):
        if pipe is not None:
            pipe.close()


class SourceFrames:
    """`frame(k)`: the source frame showing at k / `fps` seconds, at `width` x `height`.

    Read in order, as a film is made, from a `SourceReader`; asking for an earlier frame starts reading
    again. `close()` ends the reader (so does dropping this object).
    """

    def __init__(self, video: Path, fps: float, width: int, height: int) -> None:
        self.video, self.fps, self.width, self.height = video, fps, width, height
        self._reader: SourceReader | None = None
        self._next = 0  #: the frame `_reader` gives next

    def frame(self, index: int) -> np.ndarray:
        if self._reader is None or index < self._next:
            self.close()
            self._reader = SourceReader(self.video, "frames", self.fps, self.width, self.height)
            self._next = 0
        size = self.width * self.height * 3
        for _ in range(index - self._next):
            self._reader.read(size, 1 / self.fps)
        self._next = index + 1
        return np.frombuffer(self._reader.read(size, 1 / self.fps), np.uint8).reshape(self.height, self.width, 3)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def fitted_sound(video: Path, samples: int) -> np.ndarray | None:
    """The video's sound as float32 stereo at 48 kHz, shape (`samples`, 2), cut or padded with silence;
    None when it has none. Decoded in a `SourceReader`."""
    with SourceReader(video, "sound", samples) as reader:
        if reader.read(1, 0.0) == b"\0":
            return None
        data = reader.read(samples * 2 * 4, samples / SAMPLE_RATE)
    return np.frombuffer(data, np.float32).reshape(samples, 2)


def timed_frames(video: Path, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """Endless: for frame k, the source frame showing at k / `fps` (its last one once it ends), upright
    and cover-fitted to `width` x `height`. Decodes in this process: the child's side of `SourceFrames`."""
    with av.open(str(video), format=DEMUXER) as container:
        decoded = _decoded(container)
        shown, upcoming = None, next(decoded, None)
        if upcoming is None:
            raise ValueError("it has no video frame")
        fitted: np.ndarray | None = None
        for k in itertools.count():
            moment = k / fps + 1e-6
            while upcoming is not None and (upcoming.time or 0.0) <= moment:
                shown, fitted, upcoming = upcoming, None, next(decoded, None)
            if fitted is None:
                fitted = cover(shown or upcoming, width, height)  # type: ignore[arg-type]
            yield fitted


def _decoded(container: av.container.InputContainer) -> Iterator[av.VideoFrame]:
    """The frames in order, each within the upload caps (ValueError past them: a bomb, not a video)."""
    stream = container.streams.video[0]
    most = MAX_FPS * (math.ceil(_stated_seconds(container, stream)) + 1)
    try:
        for count, frame in enumerate(container.decode(stream), 1):
            if count > most:
                raise ValueError(f"it holds more than {most} frames, over {MAX_FPS} a second of its stated length")
            yield within_caps(frame)
    except av.FFmpegError:
        return


def within_caps(frame: av.VideoFrame) -> av.VideoFrame:
    """`frame`, unless it is larger than an upload may be (ValueError): the probe checked only two frames
    against these caps."""
    width, height = frame.width, frame.height
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise ValueError(f"a frame is {width}x{height}, larger than {MAX_SIDE} pixels a side or 4096x2160 in all")
    return frame


def _stated_seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def cover(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    """`frame` turned upright, scaled (while converted to RGB) to cover `width` x `height`, centre-cropped."""
    turns = (int(frame.rotation) % 360) // 90
    shown_w, shown_h = (frame.height, frame.width) if turns % 2 else (frame.width, frame.height)
    scale = max(width / shown_w, height / shown_h)
    scaled_w, scaled_h = max(width, math.ceil(shown_w * scale)), max(height, math.ceil(shown_h * scale))
    coded = (scaled_h, scaled_w) if turns % 2 else (scaled_w, scaled_h)
    rgb = frame.to_ndarray(format="rgb24", width=coded[0], height=coded[1])
    if turns:
        rgb = np.rot90(rgb, turns)  # counter-clockwise, as FFmpeg's display rotation is
    left, top = (rgb.shape[1] - width) // 2, (rgb.shape[0] - height) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def source_sound(video: Path, samples: int) -> np.ndarray | None:
    """The first `samples` of the video's first audio stream as float32 stereo at 48 kHz, shape
    (`samples`, 2), silence past its end; None without sound. Decoding stops once they are in (a long
    audio track under a short video is never held whole). Decodes in this process: `fitted_sound`'s child."""
    with av.open(str(video), format=DEMUXER) as container:
        if not container.streams.audio:
            return None
        chunks = _sound_chunks(container, samples)
    if not chunks:
        return None
    planar = np.concatenate(chunks, axis=1)[:, :samples]
    out = np.zeros((samples, 2), np.float32)
    out[: planar.shape[1]] = planar.T
    return out


def _sound_chunks(container: av.container.InputContainer, samples: int) -> list[np.ndarray]:
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    have = 0
    try:
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
                have += out.samples
            if have >= samples:
                break
    except av.FFmpegError:
        pass  # a damaged tail: the sound before it
    chunks.extend(out.to_ndarray() for out in resampler.resample(None))
    return chunks
