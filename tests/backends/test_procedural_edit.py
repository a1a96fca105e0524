"""An edit keeps its source's timing and framing and changes its look: checked on the decoded videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from reelgate.backends.base import EditSource, Orientation, RemixSource, VideoSpec
from reelgate.backends.procedural import ProceduralBackend
from reelgate.backends.procedural.captions import FontFinder
from reelgate.backends.procedural.film import Film
from reelgate.media.encode import SAMPLE_RATE
from reelgate.media.probe import probe, read_audio
from tests.inputs.clips import make_clip

PARENT = "中国街头吃西瓜，夕阳下的城市"


def _spec(source: EditSource, prompt: str = "make it purple, at night", seconds: int = 4) -> VideoSpec:
    return VideoSpec(prompt, Orientation.PORTRAIT, seconds, 144, 256, 8, 5, "m", edit_of=source)


def _render(spec: VideoSpec, workdir: Path) -> Path:
    workdir.mkdir()
    return ProceduralBackend(preset="ultrafast").render(spec, workdir, lambda _: None).video


def _decoded(video: Path, width: int = 144, height: int = 256) -> np.ndarray:
    with av.open(str(video)) as container:
        frames = [f.to_ndarray(format="rgb24", width=width, height=height) for f in container.decode(video=0)]
    return np.stack(frames).astype(np.int16)


def test_an_uploaded_video_is_repainted_in_its_own_timing_with_its_own_sound(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "source.mp4", seconds=4.0, width=144, height=256, fps=8)
    video = _render(_spec(EditSource(source)), tmp_path / "work")
    info = probe(video)
    assert (info.duration, info.width, info.height, info.has_audio) == (4.0, 144, 256, True)
    before, after = _decoded(source), _decoded(video)
    assert len(after) == len(before) == 32
    assert np.abs(after - before).mean() > 40  # a different look
    # The source brightens frame by frame (its red rises); the edit does too, in step.
    assert np.corrcoef(before.mean(axis=(1, 2, 3)), after.mean(axis=(1, 2, 3)))[0, 1] > 0.9
    samples, rate = read_audio(video)
    spectrum = np.abs(np.fft.rfft(samples[0, : rate * 2]))
    assert rate == SAMPLE_RATE and abs(np.argmax(spectrum) * rate / (rate * 2) - 440) < 5  # the source's tone


def test_a_landscape_source_shorter_than_the_edit_is_cropped_and_held(tmp_path: Path) -> None:
    source = make_clip(tmp_path / "source.mp4", seconds=3.0, width=320, height=180, fps=10, audio=False)
    video = _render(_spec(EditSource(source)), tmp_path / "work")
    info = probe(video)
    assert (info.duration, info.width, info.height, info.has_audio) == (4.0, 144, 256, True)
    frames = _decoded(video)
    assert np.abs(np.diff(frames[-8:], axis=0)).mean() < np.abs(np.diff(frames[:24], axis=0)).mean()


def test_a_known_storyboard_is_edited_as_a_remix(tmp_path: Path) -> None:
    source = EditSource(tmp_path / "unused.mp4", PARENT, 1)
    edited = list(Film.of(_spec(source, "at night", seconds=6), FontFinder()).frames())
    remix = VideoSpec("at night", Orientation.PORTRAIT, 6, 144, 256, 8, 5, "m", remix_of=RemixSource(PARENT, 1))
    assert np.array_equal(np.stack(edited), np.stack(list(Film.of(remix, FontFinder()).frames())))
