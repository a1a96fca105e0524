"""The diffusers backend on tiny, randomly initialised Wan, LTX-Video and LTX-2 checkpoints, on the CPU.

Each checkpoint is saved to a folder and loaded through the backend's real loading path; each video
is checked by decoding the MP4 as a player would.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from reelgate.backends.base import Orientation, RemixSource, VideoSpec
from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.media.probe import probe, read_audio
from tests.gpu.conftest import Tinting, TinyModels, options, save_lora, shot_colours

PROMPT = "a street at dusk, then it starts to rain"


def _spec(seconds: int = 2, size: tuple[int, int] = (96, 64), **extra: Any) -> VideoSpec:
    orientation = Orientation.PORTRAIT if size[1] > size[0] else Orientation.LANDSCAPE
    return VideoSpec(PROMPT, orientation, seconds, size[0], size[1], 8, 7, "tiny", **extra)


async def _backend(family: str, weights: Path, **extra: Any) -> DiffusionBackend:
    backend = DiffusionBackend(family, parse(family, options(family, weights, **extra)))
    await backend.start()
    assert backend.problem is None and backend.loaded is not None
    return backend


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


@pytest.mark.parametrize("family", ["wan", "ltx", "ltx2"])
async def test_two_shots_joined_by_a_cut_with_sound(family: str, tiny_models: TinyModels, tmp_path: Path) -> None:
    sound = "model" if family == "ltx2" else "procedural"
    backend = await _backend(family, tiny_models.folder(family), sound=sound)
    tint = backend.loaded.pipeline = Tinting(backend.loaded.pipeline)  # type: ignore[union-attr]
    progress: list[int] = []
    try:
        result = await backend.generate(_spec(), tmp_path, progress.append)
    finally:
        await backend.close()
    info = probe(result.video)
    assert (info.width, info.height, info.frames, info.fps) == (96, 64, 16, 8)
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.has_audio and info.audio_duration == pytest.approx(2.0, abs=0.05)
    # Two runs, one per clause, each at the family's frame rule (8 output frames need 9 model frames).
    assert [call["prompt"] for call in tint.calls] == ["a street at dusk", "it starts to rain"]
    assert [call["num_frames"] for call in tint.calls] == [9, 9]
    assert shot_colours(_frames(result.video)) == [0] * 8 + [1] * 8  # the cut is at 1 s
    assert progress == sorted(set(progress)) and progress[-1] == 100 and len(progress) > 5


async def test_ltx2_sound_is_the_models_own(tiny_models: TinyModels, tmp_path: Path) -> None:
    backend = await _backend("ltx2", tiny_models.folder("ltx2"), sound="model")
    tint = backend.loaded.pipeline = Tinting(backend.loaded.pipeline)  # type: ignore[union-attr]
    try:
        result = await backend.generate(_spec(), tmp_path, lambda _: None)
    finally:
        await backend.close()
    samples, rate = read_audio(result.video)
    loudest = max(float(np.abs(audio).max()) for audio in tint.audio)
    assert rate == 48_000 and len(tint.audio) == 2
    # The procedural soundtrack peaks near 0.7; the tiny model's audio is far quieter, and it is what plays.
    assert 0 < float(np.abs(samples).max()) < 1.5 * loudest + 0.01


async def test_continued_shots_start_on_the_last_frame_and_first_frames_are_used(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    backend = await _backend(
        "wan", tiny_models.folder("wan"), image_weights=str(tiny_models.folder("wan-i2v")), shots="continue"
    )
    image_pipe = backend.loaded.image_pipeline = Tinting(backend.loaded.image_pipeline)  # type: ignore[union-attr]
    text_pipe = backend.loaded.pipeline = Tinting(backend.loaded.pipeline)  # type: ignore[union-attr]
    opening = tmp_path / "opening.png"
    Image.new("RGB", (96, 64), (250, 200, 10)).save(opening)
    try:
        continued = await backend.generate(_spec(), tmp_path, lambda _: None)
        assert len(text_pipe.calls) == 1 and len(image_pipe.calls) == 1
        # The second shot starts on the first shot's last frame, at the generation size.
        assert image_pipe.calls[0]["image"].size == (48, 32)
        assert np.asarray(image_pipe.calls[0]["image"])[..., 0].mean() > 250  # the red-painted first shot
        assert probe(continued.video).frames == 16
        opened = await backend.generate(_spec(first_frame=opening), tmp_path, lambda _: None)
        assert len(text_pipe.calls) == 1 and len(image_pipe.calls) == 3  # both shots from images now
        assert np.asarray(image_pipe.calls[1]["image"]).reshape(-1, 3).mean(axis=0) == pytest.approx(
            (250, 200, 10), abs=2
        )
        assert probe(opened.video).frames == 16
    finally:
        await backend.close()


async def test_portrait_is_generated_portrait_and_scaled_without_distortion(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    backend = await _backend("ltx", tiny_models.folder("ltx"))
    tint = backend.loaded.pipeline = Tinting(backend.loaded.pipeline)  # type: ignore[union-attr]
    try:
        result = await backend.generate(_spec(seconds=1, size=(72, 128)), tmp_path, lambda _: None)
    finally:
        await backend.close()
    assert [(call["width"], call["height"]) for call in tint.calls] == [(32, 64)]
    info = probe(result.video)
    assert (info.width, info.height, info.frames) == (72, 128, 8)


async def test_a_remix_keeps_the_parents_prompt_and_seed(tiny_models: TinyModels, tmp_path: Path) -> None:
    backend = await _backend("wan", tiny_models.folder("wan"))
    tint = backend.loaded.pipeline = Tinting(backend.loaded.pipeline)  # type: ignore[union-attr]
    spec = VideoSpec("make it snow", Orientation.LANDSCAPE, 1, 96, 64, 8, 99, "tiny", remix_of=RemixSource("a cat", 5))
    try:
        await backend.generate(spec, tmp_path, lambda _: None)
    finally:
        await backend.close()
    assert tint.calls[0]["prompt"] == "a cat，make it snow"
    assert tint.calls[0]["generator"].initial_seed() == 5


async def test_cancelling_stops_between_steps_and_frees_the_gpu(
    tiny_models: TinyModels, tmp_path: Path, release: threading.Event
) -> None:
    backend = await _backend("wan", tiny_models.folder("wan"), steps=40)
    assert backend.loaded is not None
    forwards: list[int] = []
    held = threading.Event()

    def hold(module: Any, args: Any) -> None:
        forwards.append(1)
        if len(forwards) == 3:
            held.set()
            release.wait(30)

    hook = backend.loaded.pipeline.transformer.register_forward_pre_hook(hold)
    progress: list[int] = []
    running = asyncio.create_task(backend.generate(_spec(seconds=1), tmp_path, progress.append))
    assert await asyncio.to_thread(held.wait, 30)
    running.cancel()
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    # Two transformer passes per step (guidance); the run stopped right after the step it was in.
    assert len(forwards) <= 4 and progress and progress[-1] < 10
    hook.remove()
    result = await backend.generate(_spec(seconds=1), tmp_path, lambda _: None)  # the GPU thread is free
    await backend.close()
    assert probe(result.video).frames == 8


async def test_speed_switches_load_and_run(tiny_models: TinyModels, tmp_path: Path) -> None:
    backend = await _backend(
        "wan", tiny_models.folder("wan"), attention="native", cache={"kind": "first-block", "threshold": 0.05}
    )
    assert backend.loaded is not None
    try:
        assert backend.loaded.pipeline.transformer.is_cache_enabled
        result = await backend.generate(_spec(seconds=1), tmp_path, lambda _: None)
    finally:
        await backend.close()
    assert probe(result.video).frames == 8


async def test_missing_weights_fail_at_start_naming_the_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    backend = DiffusionBackend("gpu", parse("gpu", options("wan", missing)))
    await backend.start()
    assert backend.failed and backend.loaded is None
    assert backend.problem is not None and str(missing) in backend.problem
    await backend.close()


async def test_a_lora_is_fused_into_the_weights(tiny_models: TinyModels, tmp_path: Path) -> None:
    lora = save_lora(tiny_models.folder("wan") / "transformer", tmp_path / "lora")
    plain = await _backend("wan", tiny_models.folder("wan"))
    fused = await _backend("wan", tiny_models.folder("wan"), loras=[{"path": str(lora)}])
    try:
        before = plain.loaded.pipeline.transformer.blocks[0].attn1.to_q  # type: ignore[union-attr]
        after = fused.loaded.pipeline.transformer.blocks[0].attn1.to_q  # type: ignore[union-attr]
        assert type(after) is type(before)  # fused: no adapter layers left to slow each step
        assert float((after.weight - before.weight).detach().abs().max()) > 0
        assert probe((await fused.generate(_spec(seconds=1), tmp_path, lambda _: None)).video).frames == 8
    finally:
        await plain.close()
        await fused.close()
    missing = DiffusionBackend(
        "x", parse("x", options("wan", tiny_models.folder("wan"), loras=["/no/lora.safetensors"]))
    )
    await missing.start()
    assert missing.failed and "/no/lora.safetensors" in (missing.problem or "")
    await missing.close()
