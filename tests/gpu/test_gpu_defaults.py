"""What a GPU turns on by default (compile, warm-up, caches, fused LoRAs), run on the CPU with tiny models.

Each test here reproduces a way the first real run on a GPU failed or degraded, through the backend's
real loading path: a cache hook under compilation, a failing warm-up, a LoRA left out of Wan 2.2's
second expert, a cancelled run's cache state, a request shape the warm-up never compiled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from PIL import Image

from reelgate.backends.base import Orientation, VideoSpec
from reelgate.backends.diffusion import from_settings, parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.catalog import ModelEntry
from reelgate.errors import GenerationError
from reelgate.media.probe import probe
from tests.gpu.conftest import Tinting, TinyModels, options, save_lora


@pytest.fixture
def inductor() -> None:
    """torch.compile's CPU backend, imported once with its own deprecation warnings silenced (tests fail on any)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import torch._inductor.compile_fx  # noqa: F401


def _spec(seconds: int = 1, size: tuple[int, int] = (96, 64), fps: int = 8) -> VideoSpec:
    orientation = Orientation.PORTRAIT if size[1] > size[0] else Orientation.LANDSCAPE
    return VideoSpec("a cat on a street", orientation, seconds, size[0], size[1], fps, 7, "tiny")


async def _started(family: str, weights: Path, **extra: Any) -> DiffusionBackend:
    backend = DiffusionBackend(family, parse(family, options(family, weights, **extra)))
    await backend.start()
    assert backend.problem is None and backend.loaded is not None, backend.problem
    return backend


def test_cache_choices_are_checked_per_family_at_configuration() -> None:
    refused = [
        ("wan", {"kind": "faster"}, "`cache.kind` must be one of ['first-block', 'taylorseer', 'mag']"),
        ("ltx2", {"kind": "first-block"}, "does not run on family 'ltx2'; use one of ['taylorseer']"),
        ("wan", {"kind": "mag", "threshold": 0.06}, "needs ['mag_ratios']"),
        ("wan", {"kind": "taylorseer", "threshold": 0.05}, "takes ['cache_interval', 'disable_cache_after_step'"),
        ("wan", {"kind": "first-block", "threshold": "fast"}, "`cache.threshold` must be float or int"),
    ]
    for family, cache, message in refused:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse("gpu", {"family": family, "weights": "/w", "cache": cache})
    mag = parse("gpu", {"family": "wan", "weights": "/w", "cache": {"kind": "mag", "mag_ratios": [1.0, 0.9]}})
    assert mag.cache is not None and mag.cache.breaks_graphs
    assert mag.cache.hook_config(steps=30).mag_ratios.shape == (30,)  # stretched to the steps run


@pytest.mark.usefixtures("inductor")
async def test_compiled_blocks_run_with_a_first_block_cache(tiny_models: TinyModels, tmp_path: Path) -> None:
    torch._dynamo.reset()
    cache = {"kind": "first-block", "threshold": 0.05}
    backend = await _started("wan", tiny_models.folder("wan"), compile=True, warmup=False, cache=cache)
    try:
        result = await backend.generate(_spec(), tmp_path, lambda _: None)
    finally:
        await backend.close()
    assert probe(result.video).frames == 8


async def test_a_failed_warm_up_marks_the_backend_failed(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diffusers import WanTransformer3DModel

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(WanTransformer3DModel, "forward", out_of_memory)
    backend = DiffusionBackend("gpu", parse("gpu", options("wan", tiny_models.folder("wan"), warmup=True)))
    await backend.start()  # never raises
    try:
        assert backend.failed and backend.loaded is None
        assert backend.problem == "failed to load: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
        with pytest.raises(GenerationError, match="The model is not available: failed to load: OutOfMemoryError"):
            await backend.generate(_spec(), tmp_path, lambda _: None)
    finally:
        await backend.close()


async def test_loras_are_fused_into_both_wan22_experts(tiny_models: TinyModels, tmp_path: Path) -> None:
    folder = tiny_models.folder("wan22")
    lora = save_lora(folder / "transformer", tmp_path / "lora")
    plain = await _started("wan", folder)
    fused = await _started("wan", folder, loras=[str(lora)])
    try:
        for expert in ("transformer", "transformer_2"):
            before = getattr(plain.loaded.pipeline, expert).blocks[0].attn1.to_q  # type: ignore[union-attr]
            after = getattr(fused.loaded.pipeline, expert).blocks[0].attn1.to_q  # type: ignore[union-attr]
            assert type(after) is type(before), expert  # fused: no adapter layer left
            assert float((after.weight - before.weight).detach().abs().max()) > 0, f"{expert} kept its weights"
    finally:
        await plain.close()
        await fused.close()


async def test_a_cancelled_run_leaves_no_cache_state_for_the_next_shape(
    tiny_models: TinyModels, tmp_path: Path, release: threading.Event
) -> None:
    cache = {"kind": "first-block", "threshold": 0.05}
    backend = await _started("wan", tiny_models.folder("wan"), steps=40, cache=cache)
    assert backend.loaded is not None
    forwards: list[int] = []
    held = threading.Event()

    def hold(module: Any, args: Any) -> None:
        forwards.append(1)
        if len(forwards) == 3:
            held.set()
            release.wait(30)

    hook = backend.loaded.pipeline.transformer.register_forward_pre_hook(hold)
    running = asyncio.create_task(backend.generate(_spec(), tmp_path, lambda _: None))  # 9 frames a run
    assert await asyncio.to_thread(held.wait, 30)
    running.cancel()
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await running
    hook.remove()
    try:
        # 2 fps: runs of 5 frames, so the cached residuals of the stopped 9-frame run cannot fit.
        result = await backend.generate(_spec(size=(64, 96), fps=2), tmp_path, lambda _: None)
    finally:
        await backend.close()
    assert probe(result.video).frames == 2


@pytest.mark.usefixtures("inductor")
async def test_warm_up_compiles_every_served_shape(tiny_models: TinyModels, tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    entry = ModelEntry(
        name="tiny",
        backend="gpu",
        seconds=2,
        sizes={Orientation.PORTRAIT: (64, 96), Orientation.LANDSCAPE: (96, 64)},
        fps=8,
        price=0,
        options=options("wan", tiny_models.folder("wan"), compile=True, warmup=True),
    )
    backend = from_settings("gpu", SimpleNamespace(x264_preset="veryfast"), [entry])  # type: ignore[arg-type]
    await backend.start()
    assert backend.problem is None, backend.problem
    compiled = sum(counters["stats"].values())
    assert compiled > 0
    try:
        for size in ((96, 64), (64, 96)):
            assert probe((await backend.generate(_spec(2, size), tmp_path, lambda _: None)).video).frames == 16
    finally:
        await backend.close()
    assert sum(counters["stats"].values()) == compiled, dict(counters["stats"])  # nothing compiled in a request


# diffusers' LTXConditionPipeline hands its scheduler a tensor where numpy 2 wants an array (its own warning).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
async def test_quality_defaults_per_family(tiny_models: TinyModels, tmp_path: Path) -> None:
    wan = await _started("wan", tiny_models.folder("wan"), dtype="bfloat16")
    ltx = await _started("ltx", tiny_models.folder("ltx"))
    try:
        pipe = wan.loaded.pipeline  # type: ignore[union-attr]
        assert (pipe.vae.dtype, pipe.transformer.dtype) == (torch.float32, torch.bfloat16)
        tint = ltx.loaded.pipeline = Tinting(ltx.loaded.pipeline)  # type: ignore[union-attr]
        assert probe((await wan.generate(_spec(), tmp_path, lambda _: None)).video).frames == 8
        await ltx.generate(_spec(), tmp_path, lambda _: None)
        # LTX-Video 0.9.5+ starts from an image through LTXConditionPipeline, on the same weights.
        assert type(ltx.loaded.image_pipeline).__name__ == "LTXConditionPipeline"  # type: ignore[union-attr]
        opening = tmp_path / "opening.png"
        Image.new("RGB", (96, 64), (250, 200, 10)).save(opening)
        spec = dataclasses.replace(_spec(), first_frame=opening)
        assert probe((await ltx.generate(spec, tmp_path, lambda _: None)).video).frames == 8
    finally:
        await wan.close()
        await ltx.close()
    call = tint.calls[0]
    assert (call["guidance_scale"], call["decode_timestep"], call["decode_noise_scale"]) == (3.0, 0.05, 0.025)


async def test_pipelines_on_the_same_weights_keep_the_mixed_precision(tiny_models: TinyModels) -> None:
    """LTX's image pipeline and Wan's edit pipeline share the text pipeline's modules; building them must not
    cast those modules (diffusers' `from_pipe` turns every module float32 unless told a dtype)."""
    wan = await _started("wan", tiny_models.folder("wan"), dtype="bfloat16")
    ltx = await _started("ltx", tiny_models.folder("ltx"), dtype="bfloat16")
    try:
        for loaded, other in ((wan.loaded, wan.loaded.video_pipeline), (ltx.loaded, ltx.loaded.image_pipeline)):  # type: ignore[union-attr]
            assert other is not None and other.transformer is loaded.pipeline.transformer  # type: ignore[union-attr]
            assert loaded.pipeline.transformer.dtype == torch.bfloat16  # type: ignore[union-attr]
        assert wan.loaded.pipeline.vae.dtype == torch.float32  # type: ignore[union-attr]
    finally:
        await wan.close()
        await ltx.close()


async def test_an_image_model_shares_the_text_side_and_takes_no_text_model_lora(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    lora = save_lora(tiny_models.folder("wan") / "transformer", tmp_path / "lora")
    plain = await _started("wan", tiny_models.folder("wan"), image_weights=str(tiny_models.folder("wan-i2v")))
    backend = await _started(
        "wan", tiny_models.folder("wan"), image_weights=str(tiny_models.folder("wan-i2v")), loras=[str(lora)]
    )
    try:
        text, image = backend.loaded.pipeline, backend.loaded.image_pipeline  # type: ignore[union-attr]
        assert image.text_encoder is text.text_encoder and image.vae is text.vae
        assert image.tokenizer is text.tokenizer
        untouched = plain.loaded.image_pipeline.transformer.blocks[0].attn1.to_q.weight  # type: ignore[union-attr]
        assert torch.equal(image.transformer.blocks[0].attn1.to_q.weight, untouched)
    finally:
        await plain.close()
        await backend.close()
