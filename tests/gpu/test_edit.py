"""Edits on the diffusers backend (tiny checkpoints on the CPU): each shot remade by the video-to-video
pipeline from the source's frames of its time, at the source's length and size, with the source's sound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from reelgate.backends.base import EditSource, Orientation, VideoSpec
from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.media.encode import SAMPLE_RATE
from reelgate.media.probe import probe, read_audio
from tests.gpu.conftest import Tinting, TinyModels, options
from tests.inputs.clips import make_clip

SIZE = (96, 64)


async def _backend(family: str, tiny_models: TinyModels) -> DiffusionBackend:
    backend = DiffusionBackend(family, parse(family, options(family, tiny_models.folder(family))))
    await backend.start()
    assert backend.problem is None and backend.loaded is not None
    return backend


async def test_wan_remakes_each_shot_from_the_source(tiny_models: TinyModels, tmp_path: Path) -> None:
    backend = await _backend("wan", tiny_models)
    assert backend.can_edit
    loaded = backend.loaded
    assert loaded is not None
    video_pipe = loaded.video_pipeline = Tinting(loaded.video_pipeline)
    # A landscape clip whose red rises over its 2 s, with a 440 Hz tone.
    source = make_clip(tmp_path / "source.mp4", seconds=2.0, width=192, height=128, fps=10)
    spec = VideoSpec("in the snow", Orientation.LANDSCAPE, 2, *SIZE, 8, 11, "tiny", edit_of=EditSource(source))
    progress: list[int] = []
    try:
        result = await backend.generate(spec, tmp_path, progress.append)
    finally:
        await backend.close()
    info = probe(result.video)
    assert (info.width, info.height, info.frames) == (96, 64, 16) and info.duration == pytest.approx(2.0, abs=0.05)
    calls: list[dict[str, Any]] = video_pipe.calls
    assert calls and all(call["prompt"] == "in the snow" and call["strength"] == 0.7 for call in calls)
    assert "num_frames" not in calls[0]
    # Each run started from the source's frames of its own time: the first run's first frame is the
    # clip's first (red 0), and the runs' frames grow redder as the clip does.
    reds = [float(np.asarray(frame)[..., 0].mean()) for call in calls for frame in call["video"]]
    assert reds[0] < 20 and reds[-1] > 200 and reds == sorted(reds)
    assert sum(len(call["video"]) for call in calls) >= 16
    samples, rate = read_audio(result.video)
    spectrum = np.abs(np.fft.rfft(samples[0, :SAMPLE_RATE]))
    assert rate == SAMPLE_RATE and abs(np.argmax(spectrum) - 440) < 3  # the source's own sound
    assert progress == sorted(progress) and progress[-1] == 100


async def test_ltx_has_no_video_to_video_and_cannot_edit(tiny_models: TinyModels) -> None:
    backend = DiffusionBackend("ltx", parse("ltx", options("ltx", tiny_models.folder("ltx"))))
    assert not backend.can_edit
