"""The memory planner on real-size checkpoints (published configs, meta device, no weights) and four cards."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from reelgate.backends.diffusion import memory, parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.backends.diffusion.warmup import Served, run_shapes
from tests.gpu import published
from tests.gpu.conftest import TinyModels, options

GIB = 2**30
#: What `torch.cuda.get_device_properties(...).total_memory` reports (nvidia-smi's MiB): RTX 4090 24 GB,
#: L40S 48 GB, H100 80 GB, H200 141 GB.
CARDS = {24: 24564 * 2**20, 48: 46068 * 2**20, 80: 81559 * 2**20, 141: 143771 * 2**20}
#: The README's chat model: 15 s at 1280x720 or 720x1280, 24 fps.
SERVED = (Served(1280, 720, 15, 24), Served(720, 1280, 15, 24))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published")
    for name in published.CHECKPOINTS:
        published.save(name, root)
    return root


def _footprint(root: Path, family: str, weights: str, image_weights: str | None = None) -> memory.Footprint:
    options = {"family": family, "weights": str(root / weights)}
    if image_weights:
        options["image_weights"] = str(root / image_weights)
    config = parse("gpu", options)
    shapes = run_shapes(config, SERVED, config.family.side_multiple, config.family.frame_step)
    image = root / image_weights if image_weights else None
    return memory.footprint(config, root / weights, image, shapes, torch.bfloat16)


def _decisions(footprint: memory.Footprint) -> dict[int, tuple[str, bool]]:
    return {card: _decision(footprint, capacity) for card, capacity in CARDS.items()}


def _decision(footprint: memory.Footprint, capacity: int) -> tuple[str, bool]:
    placement = memory.choose(footprint, capacity)
    assert placement.need <= memory.USABLE * capacity
    return placement.offload, placement.vae_tiling


def test_wan21_text_and_image_models_share_the_text_encoder_and_vae(checkpoints: Path) -> None:
    footprint = _footprint(checkpoints, "wan", "Wan2.1-T2V-14B", "Wan2.1-I2V-14B-720P")
    weights = {name: size / GIB for name, size in footprint.weights}
    # The published sizes: T2V-14B 26.6 GiB and I2V-14B 30.5 GiB in bf16, UMT5-XXL 10.6 GiB (once),
    # CLIP ViT-H and the VAE in float32.
    assert weights == pytest.approx(
        {"text_encoder": 10.58, "vae": 0.47, "transformer": 26.61, "i2v_transformer": 30.54, "i2v_image_encoder": 2.35},
        abs=0.01,
    )
    # The README's configuration: whole on an H100 only by decoding in tiles; offloaded on a 48 GB card.
    assert _decisions(footprint) == {
        24: ("sequential", True),
        48: ("model", False),
        80: ("none", True),
        141: ("none", False),
    }


def test_wan22_a14b_has_two_experts_per_pipeline(checkpoints: Path) -> None:
    footprint = _footprint(checkpoints, "wan", "Wan2.2-T2V-A14B", "Wan2.2-I2V-A14B")
    names = [name for name, _ in footprint.weights]
    assert names == ["text_encoder", "vae", "transformer", "transformer_2", "i2v_transformer", "i2v_transformer_2"]
    assert _decisions(footprint) == {
        24: ("sequential", True),
        48: ("model", False),
        80: ("model", False),
        141: ("none", False),
    }
    alone = _footprint(checkpoints, "wan", "Wan2.1-T2V-14B")
    assert _decisions(alone) == {
        24: ("sequential", True),
        48: ("none", True),
        80: ("none", False),
        141: ("none", False),
    }


def test_ltx2(checkpoints: Path) -> None:
    footprint = _footprint(checkpoints, "ltx2", "LTX-2")
    weights = dict(footprint.weights)
    assert weights["transformer"] / GIB == pytest.approx(35.2, abs=0.1)  # 19B parameters
    assert weights["text_encoder"] / GIB == pytest.approx(22.7, abs=0.1)  # Gemma 3 12B
    assert _decisions(footprint) == {
        24: ("sequential", True),
        48: ("model", False),
        80: ("none", False),
        141: ("none", False),
    }


def test_a_choice_that_cannot_fit_refuses_with_its_figures(checkpoints: Path) -> None:
    footprint = _footprint(checkpoints, "wan", "Wan2.1-T2V-14B", "Wan2.1-I2V-14B-720P")
    # The catalog may pin a placement; on a 48 GB card everything on the GPU cannot work.
    with pytest.raises(memory.DoesNotFit) as refused:
        memory.choose(footprint, CARDS[48], offload="none")
    message = str(refused.value)
    for figure in ("offload none and VAE tiling", "needs 74.8 GiB", "i2v_transformer 30.5 GiB", "has 45.0 GiB"):
        assert figure in message, message
    assert memory.choose(footprint, CARDS[141], offload="model").offload == "model"
    with pytest.raises(memory.DoesNotFit, match="even with offload sequential"):
        memory.choose(footprint, 2 * GIB)


async def test_the_worker_plans_before_loading_and_refuses_with_the_figures(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "GPU" of 1 GiB: the plan is made from the folder's configs before any weight is read or moved.
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=GIB))
    folder = tiny_models.folder("wan")
    backend = DiffusionBackend("gpu", parse("gpu", options("wan", folder, device="cuda")))
    await backend.start()
    await backend.close()
    assert backend.failed and backend.problem is not None
    assert backend.problem.startswith(
        "failed to load: the model does not fit on this GPU: even with offload sequential"
    )
    assert "weights: text_encoder 0.0 GiB, transformer 0.0 GiB, vae 0.0 GiB" in backend.problem
    assert "reserve 1.5 GiB) but the device has 1.0 GiB" in backend.problem
