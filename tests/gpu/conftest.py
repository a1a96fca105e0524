"""Tiny Wan, LTX-Video and LTX-2 checkpoints, built once per test session, and catalog options for them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.gpu import tiny

BUILDERS: dict[str, Callable[[Path], Path]] = {
    "wan": tiny.save_wan,
    "wan-i2v": lambda path: tiny.save_wan(path, image_to_video=True),
    "wan22": lambda path: tiny.save_wan(path, experts=2),
    "ltx": tiny.save_ltx,
    "ltx2": tiny.save_ltx2,
}

#: Native sizes of the tiny models (both sides multiples of 32, so every family's rule holds).
NATIVE = {"portrait": "32x64", "landscape": "64x32"}


class TinyModels:
    """Saves each tiny checkpoint the first time a test asks for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def folder(self, name: str) -> Path:
        with self._lock:
            path = self.root / name
            if not (path / "model_index.json").exists():
                BUILDERS[name](path)
            return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return TinyModels(tmp_path_factory.mktemp("tiny-models"))


def options(family: str, weights: Path, **extra: Any) -> dict[str, Any]:
    """Catalog options for a tiny model: 8 fps, runs of 9 frames, 2 steps, short prompts."""
    return {
        "family": family,
        "weights": str(weights),
        "steps": 2,
        "fps": 8,
        "shot_frames": 9,
        **NATIVE,
        "call_options": {"max_sequence_length": 16},
        **extra,
    }


class Tinting:
    """Wraps a loaded pipeline: records each run and paints its frames one pure colour per run.

    Random tiny models make frames that look alike from run to run; the paint makes each shot
    recognisable in the MP4, so a test can see where one shot ends and the next begins.
    """

    COLOURS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[dict[str, Any]] = []
        self.audio: list[np.ndarray] = []

    def __call__(self, **arguments: Any) -> Any:
        output = self.pipe(**arguments)
        colour = self.COLOURS[len(self.calls) % len(self.COLOURS)]
        output.frames[0][...] = np.asarray(colour, dtype=output.frames[0].dtype)
        if getattr(output, "audio", None) is not None:
            self.audio.append(output.audio[0].float().numpy())
        self.calls.append(arguments)
        return output

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


def shot_colours(frames: np.ndarray) -> list[int]:
    """Which of `Tinting.COLOURS` each decoded frame shows (the index of its brightest channel)."""
    return [int(np.argmax(frame.reshape(-1, 3).mean(axis=0))) for frame in frames]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event a blocking hook waits on; set at teardown so that no GPU thread is left waiting."""
    event = threading.Event()
    yield event
    event.set()


def save_lora(transformer_folder: Path, out: Path) -> Path:
    """A random rank-2 LoRA for the tiny Wan transformer in `transformer_folder`, as a .safetensors file."""
    from diffusers import WanPipeline, WanTransformer3DModel
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = WanTransformer3DModel.from_pretrained(transformer_folder)
    lora = LoraConfig(r=2, lora_alpha=2, target_modules=["to_q", "to_v"], init_lora_weights=False)
    transformer.add_adapter(lora)
    WanPipeline.save_lora_weights(out, transformer_lora_layers=get_peft_model_state_dict(transformer))
    return out / "pytorch_lora_weights.safetensors"
