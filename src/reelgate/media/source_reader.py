"""Decodes a source video in a child process: `python -m reelgate.media.source_reader MODE VIDEO ARGS...`.

A client's upload passed admission's probe, but FFmpeg's decoders are still C code fed hostile bytes, and
a full decode reads far more of the file than the probe did. So every decode after admission runs here,
where the parent (`SourceReader` in `media/source.py`) kills it once it has waited past its time limit,
and a runaway allocation ends only this process. It writes raw bytes to stdout, as fast as they are read:

    frames FPS WIDTH HEIGHT   endless RGB frames at WIDTH x HEIGHT (`timed_frames`), WIDTH*HEIGHT*3 bytes each
    sound SAMPLES             0x00 without sound, else 0x01 and SAMPLES x 2 float32 (`source_sound`)
    keys COUNT SIDE           COUNT frames (`key_frames`), each its width and height (two uint32 LE), then RGB

A failure is one line on stderr and exit status 1; the parent closing the pipe ends it quietly.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import av

from reelgate.errors import ReelgateError
from reelgate.media.source import source_sound, timed_frames

#: Address space the child may use: FFmpeg's buffers and a few 4K frames, far from a bomb's needs.
MEMORY_LIMIT = 4 * 1024**3


def frames(video: Path, fps: str, width: str, height: str) -> Iterator[memoryview]:
    for frame in timed_frames(video, float(fps), int(width), int(height)):
        yield frame.data  # contiguous: written without a copy


def sound(video: Path, samples: str) -> Iterator[bytes]:
    found = source_sound(video, int(samples))
    yield b"\0" if found is None else b"\1" + found.tobytes()


def keys(video: Path, count: str, side: str) -> Iterator[bytes]:
    from reelgate.inputs.videos import key_frames  # only this mode needs the upload module

    for image in key_frames(video, int(count), int(side)):
        yield struct.pack("<II", *image.size) + image.tobytes()


MODES: dict[str, Callable[..., Iterator[bytes | memoryview]]] = {"frames": frames, "sound": sound, "keys": keys}


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    av.logging.set_level(None)
    mode, video, *args = argv[1:]
    try:
        for data in MODES[mode](Path(video), *args):
            sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        os._exit(0)  # the parent has read what it needed (flushing at exit would raise again)
    except av.FFmpegError as exc:
        return _failed(str(exc.strerror or "FFmpeg could not read it"))
    except (ReelgateError, ValueError, MemoryError, OverflowError) as exc:
        return _failed(str(exc) or type(exc).__name__)
    return 0


def _failed(reason: str) -> int:
    print(reason[:300], file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
