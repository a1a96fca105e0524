"""bench/gpu_generate.py's own arguments: every cache shorthand its help shows becomes a valid catalog choice."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from reelgate.backends.diffusion import parse

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
