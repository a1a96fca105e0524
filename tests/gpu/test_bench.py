"""bench/gpu_generate.py: every cache shorthand its help shows becomes a valid catalog choice, and `--random`
builds the published architectures and runs them through both sides (shrunk, on the CPU)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from reelgate.backends.diffusion import memory, parse
from tests.gpu import published

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_generate.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_generate", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_documented_cache_shorthand_parses(bench: ModuleType) -> None:
    shown = re.findall(r"cache=([a-z][\w-]*(?::[\w.,=/-]+)?)", bench.__doc__ or "")
    assert {value.split(":")[0] for value in shown} == {"first-block", "taylorseer", "mag"}
    for value in shown:
        options = bench._fast([f"cache={value.rstrip('./')}"])  # `mag_ratios=1.0/0.99/...` without the dots
        config = parse("bench", {"family": "wan", "weights": "/w", **options})
        assert config.cache is not None and config.cache.kind == value.split(":")[0]
    first_block = parse("bench", {"family": "wan", "weights": "/w", **bench._fast(["cache=first-block:0.05"])})
    assert first_block.cache is not None and dict(first_block.cache.options) == {"threshold": 0.05}


def test_the_help_names_only_flags_that_exist(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit), pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["gpu_generate.py", "--help"])
        bench._arguments()
    text = capsys.readouterr().out
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))
    defined = set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", BENCH.read_text()))
    assert flags - {"--help"} <= defined, flags - defined


#: diffusers' LTX condition pipeline (reelgate's side warms it up) hands the scheduler a tensor NumPy 2 warns about.
NUMPY_COPY = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


@pytest.mark.parametrize("family", ["wan", pytest.param("ltx", marks=NUMPY_COPY)])
def test_random_renders_the_published_architecture_shrunk_through_both_sides(
    bench: ModuleType, family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--random --random-shrink` is `--random`'s own path (build, save, free, load twice), a few dozen wide.
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("中国街头，一个男孩吃西瓜，然后下起了雨\n")
    argv = ["gpu_generate.py", "--family", family, "--random", "--random-shrink", "--prompts", str(prompts)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", argv)
        bench.main()
    out = capsys.readouterr().out
    name = bench.RANDOM[family]
    built = re.search(rf"^random {name} \(shrunk\) on cpu: (.*) parameters$", out, re.M)
    assert built is not None, out
    counts = dict(item.split(" ") for item in built.group(1).split(", "))
    assert sorted(counts) == ["text_encoder", "transformer", "vae"]
    assert "vanilla: prompt 1:" in out and "reelgate: prompt 1:" in out, out
    assert re.search(r"^mean seconds per video: vanilla [\d.]+, reelgate [\d.]+", out, re.M), out


#: Parameters of the published checkpoints, in billions: Wan2.1-T2V-1.3B's transformer (its 5.68 GB of float32
#: weights), UMT5-XXL's encoder (10.6 GiB in bfloat16), LTX-Video's 2B transformer and T5-v1.1-XXL's encoder.
PUBLISHED_BILLIONS = {
    "Wan2.1-T2V-1.3B": {"transformer": 1.42, "text_encoder": 5.68, "vae": 0.13},
    "LTX-Video-0.9.5": {"transformer": 1.92, "text_encoder": 4.76, "vae": 1.25},
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_BILLIONS))
def test_random_builds_the_published_sizes(bench: ModuleType, name: str, tmp_path: Path) -> None:
    assert name in bench.RANDOM.values()
    models = memory.empty_components(published.save(name, tmp_path))
    billions = {component: sum(p.numel() for p in model.parameters()) / 1e9 for component, model in models.items()}
    assert billions == pytest.approx(PUBLISHED_BILLIONS[name], abs=0.01)
