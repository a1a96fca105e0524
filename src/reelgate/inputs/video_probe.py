"""Reads an untrusted MP4/MOV in a child process: `python -m reelgate.inputs.video_probe FILE`.

FFmpeg's demuxers and decoders are C code fed hostile bytes, so they run where a hang can be killed
and a crash or a runaway allocation costs only this process: the parent (`inputs/videos.py`) waits
with a time limit and reads one line of JSON from stdout. The line is the file's `Probe` as a dict,
or `{"error": "..."}` when FFmpeg could not read it.

Only the QuickTime/MP4 demuxer is allowed. Besides the header, the first frame and a frame near the
end are decoded, so a truncated file (its index promises frames whose data is missing) is caught here.
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import asdict, dataclass
from fractions import Fraction

import av

#: FFmpeg's one demuxer for .mp4, .mov, .m4v and their kin.
DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"

#: Address space the child may use: a few decoded 4K frames and FFmpeg's buffers, far from a bomb's needs.
MEMORY_LIMIT = 3 * 1024**3

#: Frames decoded after a seek before giving up on reaching the time asked for.
MAX_FRAMES_AFTER_SEEK = 600

#: Longest side and most pixels of an uploaded video's frame (DCI 4K, 4096x2160).
MAX_SIDE = 4096
MAX_PIXELS = 4096 * 2160
#: Frames per second beyond any real camera's; more frames than this rate gives is a bomb, not a video.
MAX_FPS = 240


@dataclass(frozen=True)
class Probe:
    seconds: float
    width: int  #: as shown: a phone video recorded sideways and rotated by its metadata is reported upright
    height: int
    fps: float
    frames: int  #: what the container's index claims (0 when it does not say)
    has_audio: bool
    rotation: int  #: degrees the decoded frames are turned to show upright (0, 90, 180 or 270)


def probe(path: str) -> Probe:
    with av.open(path, format=DEMUXER) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        seconds = _seconds(container, stream)
        first = _first_frame(container)
        rotation = int(first.rotation) % 360
        width, height = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        if seconds > 0:
            _frame_near(container, seconds * 0.95)
        return Probe(
            seconds=float(seconds),
            width=width,
            height=height,
            fps=float(stream.average_rate or 0),
            frames=int(stream.frames),
            has_audio=bool(container.streams.audio),
            rotation=rotation,
        )


def _seconds(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """The video stream's own duration (audio may run longer), else the container's."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return container.duration / av.time_base if container.duration else 0.0


def _first_frame(container: av.container.InputContainer) -> av.VideoFrame:
    for frame in container.decode(video=0):
        return frame
    raise ValueError("no video frame could be decoded")


def _frame_near(container: av.container.InputContainer, seconds: float) -> None:
    """ValueError unless a frame decodes about `seconds` in (a cut-off file's index promises frames it lacks)."""
    frame = frame_at(container, seconds)
    if frame is None or (frame.time is not None and frame.time < seconds - 0.5):
        raise ValueError("the video ends before its stated duration")


def frame_at(container: av.container.InputContainer, seconds: float) -> av.VideoFrame | None:
    """The first video frame at or after `seconds`, else the last one decoded after seeking there."""
    stream = container.streams.video[0]
    container.seek(int(seconds / (stream.time_base or Fraction(1, av.time_base))), stream=stream, backward=True)
    last = None
    for count, frame in enumerate(container.decode(stream)):
        last = frame
        if frame.time is None or frame.time >= seconds or count >= MAX_FRAMES_AFTER_SEEK:
            break
    return last


def main(argv: list[str]) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    av.logging.set_level(None)
    try:
        result: dict[str, object] = asdict(probe(argv[1]))
    except av.FFmpegError as exc:
        result = {"error": str(exc.strerror or "FFmpeg could not read it")[:200]}
    except (ValueError, MemoryError, OverflowError) as exc:
        result = {"error": str(exc)[:200]}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
