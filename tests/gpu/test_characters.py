"""The diffusers backend shows a character by starting the video from its key frame (image-to-video)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reelgate.backends.base import CharacterRef, Orientation, VideoSpec
from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from tests.gpu.conftest import Tinting, TinyModels, options


def _spec(**extra: Any) -> VideoSpec:
    return VideoSpec("Mira walks in the rain", Orientation.LANDSCAPE, 1, 96, 64, 8, 7, "tiny", **extra)


def _png(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (40, 60), color).save(path)
    return path


def _mean(image: Image.Image) -> np.ndarray:
    return np.asarray(image).reshape(-1, 3).mean(axis=0)


async def test_the_first_characters_key_frame_starts_the_video(tiny_models: TinyModels, tmp_path: Path) -> None:
    weights = options("wan", tiny_models.folder("wan"), image_weights=str(tiny_models.folder("wan-i2v")))
    backend = DiffusionBackend("wan", parse("wan", weights))
    assert backend.takes_characters
    await backend.start()
    assert backend.loaded is not None
    image_pipe = backend.loaded.image_pipeline = Tinting(backend.loaded.image_pipeline)
    mira = CharacterRef("Mira", _png(tmp_path / "mira.png", (230, 20, 200)))
    other = CharacterRef("Bo", _png(tmp_path / "bo.png", (10, 200, 30)))
    try:
        await backend.generate(_spec(characters=(mira, other)), tmp_path, lambda _: None)
        assert _mean(image_pipe.calls[0]["image"]) == pytest.approx((230, 20, 200), abs=2)
        # A reference image of the request's own comes first.
        opening = _png(tmp_path / "opening.png", (250, 200, 10))
        await backend.generate(_spec(characters=(mira,), first_frame=opening), tmp_path, lambda _: None)
        assert _mean(image_pipe.calls[-1]["image"]) == pytest.approx((250, 200, 10), abs=2)
    finally:
        await backend.close()


def test_a_text_only_model_takes_no_characters(tiny_models: TinyModels) -> None:
    backend = DiffusionBackend("wan", parse("wan", options("wan", tiny_models.folder("wan"))))
    assert not backend.takes_characters
