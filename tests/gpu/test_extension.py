"""Extensions on the diffusers backend (tiny checkpoints on the CPU): the source's frames and sound, then a
continuation started on its last frame by the image-to-video pipeline, as one MP4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from reelgate.backends.base import ExtendSource, Orientation, VideoSpec
from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.media.encode import SAMPLE_RATE, Mp4Writer, samples_for_frame
from reelgate.media.probe import probe, read_audio
from tests.gpu.conftest import Tinting, TinyModels, options

SIZE = (96, 64)


def _source(path: Path, seconds: int = 2, fps: int = 8) -> Path:
    """A 'completed video': a cyan-to-blue ramp with a 440 Hz tone."""
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(seconds * SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    stereo = np.stack([tone, tone], axis=1)
    with Mp4Writer(path, *SIZE, fps) as writer:
        for index in range(seconds * fps):
            frame = np.full((SIZE[1], SIZE[0], 3), (20, 200 - 10 * index, 230), np.uint8)
            writer.write(frame, stereo[samples_for_frame(index, fps)])
    return path


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]).astype(float)


async def _backend(family: str, weights: Path, **extra: Any) -> DiffusionBackend:
    backend = DiffusionBackend(family, parse(family, options(family, weights, **extra)))
    await backend.start()
    assert backend.problem is None and backend.loaded is not None
    return backend


def _extension(source: Path, seconds: int) -> VideoSpec:
    lead = ExtendSource("a street at dusk", 7, 2, source)
    return VideoSpec("then it starts to rain", Orientation.LANDSCAPE, 2 + seconds, *SIZE, 8, 11, "tiny", extend_of=lead)


#: diffusers' LTX condition pipeline hands the scheduler a tensor NumPy 2 warns about (a library matter).
NUMPY_COPY = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


@pytest.mark.parametrize("family", ["wan", pytest.param("ltx", marks=NUMPY_COPY)])
async def test_an_extension_opens_on_the_source_and_continues_from_its_last_frame(
    family: str, tiny_models: TinyModels, tmp_path: Path
) -> None:
    extra = {"image_weights": str(tiny_models.folder("wan-i2v"))} if family == "wan" else {}
    backend = await _backend(family, tiny_models.folder(family), **extra)
    assert backend.can_extend
    image_pipe = backend.loaded.image_pipeline = Tinting(backend.loaded.image_pipeline)  # type: ignore[union-attr]
    source = _source(tmp_path / "source.mp4")
    progress: list[int] = []
    try:
        result = await backend.generate(_extension(source, 2), tmp_path, progress.append)
    finally:
        await backend.close()
    info = probe(result.video)
    assert (info.width, info.height, info.frames) == (96, 64, 32)
    assert info.duration == pytest.approx(4.0, abs=0.05) and info.audio_duration == pytest.approx(4.0, abs=0.05)
    # The continuation started on the source's last frame, through the image-to-video pipeline.
    assert len(image_pipe.calls) == 1 and image_pipe.calls[0]["prompt"] == "it starts to rain"
    opening = np.asarray(image_pipe.calls[0]["image"]).reshape(-1, 3).mean(axis=0)
    assert opening == pytest.approx((20, 50, 230), abs=6)
    frames, original = _frames(result.video), _frames(source)
    assert np.abs(frames[:16] - original).mean() < 4  # the first two seconds ARE the source
    assert np.abs(frames[16:] - original[-1]).mean() > 60  # the continuation (painted red) differs
    samples, _ = read_audio(result.video)
    assert np.abs(samples[:, :SAMPLE_RATE]).mean() > 0.2  # the source's tone opens the soundtrack
    assert progress == sorted(progress) and progress[-1] == 100


async def test_wan_without_an_image_model_cannot_extend(tiny_models: TinyModels) -> None:
    backend = DiffusionBackend("wan", parse("wan", options("wan", tiny_models.folder("wan"))))
    assert not backend.can_extend
