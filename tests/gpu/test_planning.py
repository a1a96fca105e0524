"""The parts of the diffusers backend that need no model: config, shots, sizes, weights, progress."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.framing import generation_size
from reelgate.backends.diffusion.progress import Progress
from reelgate.backends.diffusion.shots import frames_to_generate, plan, shot_prompts
from reelgate.backends.diffusion.weights import WeightsNotFound, resolve


def test_options_default_to_the_family_and_are_checked() -> None:
    config = parse("diffusers", {"family": "ltx2", "weights": "/models/ltx-2"})
    assert (config.fps_native, config.frames_per_shot, config.native_size(True)) == (24, 121, (512, 768))
    # Placement is the memory planner's unless the catalog says otherwise; guidance is the family's.
    assert (config.shots, config.sound, config.seed, config.offload, config.vae_tiling) == (
        "cuts",
        "procedural",
        None,
        None,
        None,
    )
    assert config.guidance_scale == 3.0 and config.call_arguments["stg_scale"] == 0.0
    bad = [
        ({"weights": "/w"}, "`family` must be one of"),
        ({"family": "wan"}, "`weights`"),
        ({"family": "wan", "weights": "/w", "sound": "model"}, "makes no audio"),
        ({"family": "wan", "weights": "/w", "shot_frames": 80}, "4k+1"),
        ({"family": "ltx", "weights": "/w", "portrait": "496x832"}, "multiples of 32"),
        ({"family": "wan", "weights": "/w", "cache": {"kind": "magic"}}, "cache.kind"),
        ({"family": "wan", "weights": "/w", "turbo": True}, "unknown options ['turbo']"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=re.escape(message)):
            parse("diffusers", options)


def test_fifteen_seconds_of_wan_are_three_runs_of_81_frames() -> None:
    shots = plan("a, b, c, d", 1, seconds=15, fps=24, native_fps=16, max_frames=81, frame_step=4)
    assert [(s.start, s.end, s.frames) for s in shots] == [(0, 120, 81), (120, 240, 81), (240, 360, 81)]
    assert [s.prompt for s in shots] == ["a", "b, c", "d"]
    assert len({s.seed for s in shots}) == 3


def test_ltx_frame_counts_are_8k_plus_1() -> None:
    shots = plan("x", 1, seconds=10, fps=24, native_fps=24, max_frames=121, frame_step=8)
    assert [(s.length, s.frames) for s in shots] == [(120, 121), (120, 121)]
    assert frames_to_generate(30, 24, 24, 8) == 33
    assert frames_to_generate(1, 24, 16, 4) == 5


def test_shot_prompts_follow_the_clauses() -> None:
    assert shot_prompts("中国街头，一个男孩吃西瓜，然后下起了雨", 2) == ["中国街头，一个男孩吃西瓜", "下起了雨"]
    assert shot_prompts("a dog, a cat", 3) == ["a dog", "a dog", "a cat"]


def test_generation_keeps_the_native_budget_in_the_requested_aspect() -> None:
    assert generation_size((1024, 1792), (480, 832), 16) == (480, 832)
    assert generation_size((1280, 720), (768, 512), 32) == (832, 480)
    assert generation_size((1024, 1024), (832, 480), 16) == (624, 624)


def test_weights_are_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert resolve(str(tmp_path)) == tmp_path
    with pytest.raises(WeightsNotFound, match="does not exist"):
        resolve(str(tmp_path / "absent"))
    with pytest.raises(WeightsNotFound, match="not in the local Hugging Face cache"):
        resolve("Wan-AI/Wan2.1-T2V-1.3B-Diffusers")


def test_progress_is_monotonic_across_phases() -> None:
    seen: list[int] = []
    progress = Progress(seen.append, shots=2)
    for shot in range(2):
        for step in range(1, 5):
            progress.step(shot, step, 4)
            progress.step(shot, step - 1, 4)  # a late, lower report changes nothing
        progress.decoded(shot)
    progress.sound_ready()
    for frame in range(1, 11):
        progress.encoded(frame, 10)
    assert seen == sorted(set(seen)) and seen[0] > 0 and seen[-1] == 100
