"""Local GPU generation: vanilla diffusers settings against reelgate's defaults, in the same run.

Run by hand on a GPU host with the `gpu` extra installed and the weights on disk (nothing is
downloaded). For each prompt, makes one video with the plain pipeline (no compile, no cache, no
LoRA, default attention) and one with reelgate's settings, at the same seed, then prints seconds
per video, peak GPU memory, the speed-up, and PSNR / SSIM of reelgate's video against vanilla's.

    .venv/bin/python bench/gpu_generate.py --family wan --weights /models/Wan2.1-T2V-1.3B-Diffusers
    .venv/bin/python bench/gpu_generate.py --family ltx2 --weights /models/LTX-2 --seconds 10 --sound model
    .venv/bin/python bench/gpu_generate.py --family wan --weights /models/Wan2.1-T2V-14B-Diffusers \\
        --fast lora=/models/lightx2v_T2V_14B_cfg_step_distill_v2_lora_rank64_bf16.safetensors --fast steps=4 \\
        --fast guidance=1.0 --fast cache=first-block:0.05
    .venv/bin/python bench/gpu_generate.py --family wan --random   # Wan2.1-T2V-1.3B's architecture, random weights
    .venv/bin/python bench/gpu_generate.py --family wan --tiny     # CPU smoke run: checks the script, not speed

`--fast key=value` changes reelgate's side only (options as in the catalog), `--set key=value` both
sides (e.g. the model's native `portrait`/`landscape` size, `fps`, `shot_frames`). A cache is
`cache=KIND[:THRESHOLD][,OPTION=VALUE...]` with list values joined by `/`: `cache=first-block:0.05`,
`cache=taylorseer:cache_interval=4,max_order=2`, `cache=mag:0.06,mag_ratios=1.0/0.99/0.98/...`
(the kinds and options of `src/reelgate/backends/diffusion/caching.py`; a bare number is the threshold).
Both sides load (and reelgate's side warms up, at the request shape) before the clock starts: timings
exclude loading and warm-up, as a running worker does. `--tiny` builds a random tiny model of
`--family` (tests/gpu/tiny.py) in a temporary folder and runs on the CPU (or `--device`): figures mean
nothing there.

`--random` is for a GPU without weights: it builds the published architecture of `--family` (wan:
Wan2.1-T2V-1.3B, ltx: LTX-Video 0.9.5; configs in tests/gpu/published.py) with random bfloat16 weights,
initialised on the GPU, prints each model's parameter count, saves it in the diffusers layout in the
scratch folder and frees it; both sides then load it from there as they load `--weights`. Seconds and
memory are the real model's; the videos are noise, but PSNR / SSIM still measure how far reelgate's
settings move the output. The tokenizer is tests/gpu/tiny.py's byte-level BPE, as the published
SentencePiece models cannot be fetched offline: a prompt becomes other ids, padded to the same length, so
the text encoder does the published amount of work. `--random-shrink` (not in `--help`) builds the same
architectures a few dozen numbers wide and runs them as `--tiny` does: the CPU check of this path.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from reelgate.backends.base import Orientation, VideoSpec
from reelgate.backends.diffusion import parse
from reelgate.backends.diffusion.backend import DiffusionBackend
from reelgate.backends.diffusion.warmup import Served

PROMPTS = (
    "A red fox trots through fresh snow in a birch forest at sunrise, then stops and looks at the camera",
    "中国街头，一个男孩吃西瓜，然后下起了雨",
    "A drone shot over a coastal city at night, neon reflections on wet streets, then a tram passes by",
)
#: Plain diffusers: what `pipe(...)` does with nothing switched on.
VANILLA = {
    "compile": False,
    "warmup": False,
    "attention": None,
    "cache": None,
    "loras": (),
    "offload": "none",
    "vae_tiling": False,
}
#: The published checkpoint whose architecture `--random` builds, per family (tests/gpu/published.py).
RANDOM = {"wan": "Wan2.1-T2V-1.3B", "ltx": "LTX-Video-0.9.5"}


def main() -> None:
    args = _arguments()
    prompts = Path(args.prompts).read_text().splitlines() if args.prompts else list(PROMPTS)
    base = {"family": args.family, "weights": args.weights, "steps": args.steps, "sound": args.sound}
    chosen = (("guidance", args.guidance), ("image_weights", args.image_weights), ("device", args.device))
    base.update({k: v for k, v in chosen if v})
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        base.update(_built(args, root))
        base.update(_fast(args.set))
        vanilla_options = {**base, **VANILLA}
        fast_options = {**base, "warmup": True, **_fast(args.fast)}  # compilation never lands in a timed run
        vanilla = asyncio.run(_run("vanilla", vanilla_options, prompts, args, root / "vanilla"))
        fast = asyncio.run(_run("reelgate", fast_options, prompts, args, root / "reelgate"))
        _report(prompts, vanilla, fast)


def _built(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The options of a model built here (`--tiny`, `--random`) instead of read from `--weights`."""
    if not (args.tiny or args.random):
        return {}
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/gpu
    options = _small(args) if args.tiny or args.random_shrink else {}
    if args.tiny:
        return {**options, "weights": str(_tiny(args.family, root / "tiny-model"))}
    device = options.get("device", args.device)
    return {**options, "weights": str(_random(args.family, device, args.random_shrink, root / "random-model"))}


def _small(args: argparse.Namespace) -> dict[str, Any]:
    """Options and request that fit a model a few dozen numbers wide: 2 steps of 9 frames, on the CPU by default."""
    args.size, args.seconds, args.fps = "96x64", 2, 8
    return {
        "device": args.device or "cpu",
        "steps": 2,
        "fps": 8,
        "shot_frames": 9,
        "portrait": "32x64",
        "landscape": "64x32",
        "call_options": {"max_sequence_length": 16},
    }


def _tiny(family: str, folder: Path) -> Path:
    from tests.gpu import tiny

    return {"wan": tiny.save_wan, "ltx": tiny.save_ltx, "ltx2": tiny.save_ltx2}[family](folder)


def _random(family: str, device: str | None, shrink: bool, folder: Path) -> Path:
    """`family`'s published architecture with random weights, saved in `folder`, off the device again."""
    import torch

    from tests.gpu import published

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    started = time.perf_counter()
    counts = published.save_random(RANDOM[family], folder, device=device, shrink=shrink)
    gc.collect()  # the built models: both sides load their own copies from `folder`
    sizes = ", ".join(f"{name} {count:,}" for name, count in counts.items())
    shrunk = " (shrunk)" if shrink else ""
    print(f"random {RANDOM[family]}{shrunk} on {device}: {sizes} parameters")
    print(f"random {RANDOM[family]}: built and saved in {time.perf_counter() - started:.1f} s")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        print(f"random {RANDOM[family]}: freed, {torch.cuda.memory_allocated() / 2**30:.2f} GiB left on the GPU")
    return folder


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=["wan", "ltx", "ltx2"])
    parser.add_argument("--weights", help="a folder, or a hub id in the local cache (required unless --tiny)")
    parser.add_argument("--image-weights", help="Wan's image-to-video weights (used with --set shots=continue)")
    parser.add_argument("--device", help="cuda (default when there is one) or cpu")
    parser.add_argument(
        "--tiny", action="store_true", help="a random tiny model of --family on the CPU (a smoke test; no --weights)"
    )
    parser.add_argument(
        "--random", action="store_true", help="the published architecture of --family, random weights (no --weights)"
    )
    parser.add_argument("--random-shrink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prompts", help="a file with one prompt per line (default: three built in)")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--size", default="832x480", help="output size, e.g. 1280x720")
    parser.add_argument("--fps", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--sound", default="procedural", choices=["procedural", "model"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fast", action="append", default=[], help="key=value for reelgate's side only")
    parser.add_argument("--set", action="append", default=[], help="key=value for both sides (e.g. shot_frames=121)")
    args = parser.parse_args()
    if not (args.weights or args.tiny or args.random):
        parser.error("--weights is required (or --tiny, or --random)")
    if args.random and args.family not in RANDOM:
        parser.error(f"--random builds {' or '.join(RANDOM)} (no published config of {args.family} here)")
    return args


def _fast(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key == "lora":
            options.setdefault("loras", []).append(value)
        elif key == "cache":
            options["cache"] = _cache(value)
        elif key in ("steps", "shot_frames", "fps"):
            options[key] = int(value)
        elif key == "guidance":
            options[key] = float(value)
        elif key in ("compile", "warmup", "vae_tiling"):
            options[key] = value.lower() in ("1", "true", "yes", "on")
        else:
            options[key] = value
    return options


def _cache(value: str) -> dict[str, Any]:
    """`first-block:0.05` or `mag:0.06,mag_ratios=1.0/0.98` as the catalog's `cache` table.

    >>> _cache("taylorseer:cache_interval=4,disable_cache_after_step=none")
    {'kind': 'taylorseer', 'cache_interval': 4, 'disable_cache_after_step': None}
    """
    kind, _, rest = value.partition(":")
    cache: dict[str, Any] = {"kind": kind}
    for item in filter(None, rest.split(",")):
        key, equals, text = item.partition("=")
        if not equals:
            key, text = "threshold", item
        cache[key] = [_number(part) for part in text.split("/")] if "/" in text else _number(text)
    return cache


def _number(text: str) -> int | float | None:
    if text.lower() == "none":
        return None
    return int(text) if text.lstrip("-").isdigit() else float(text)


async def _run(label: str, options: dict[str, Any], prompts: list[str], args: Any, out: Path) -> list[dict[str, Any]]:
    import torch

    width, height = (int(side) for side in args.size.split("x"))
    config = parse(label, options)
    cuda = torch.cuda.is_available() and config.device != "cpu"  # on the CPU: no memory figures
    backend = DiffusionBackend(label, config, served=(Served(width, height, args.seconds, args.fps),))
    started = time.perf_counter()
    await backend.start()
    if backend.problem:
        raise SystemExit(f"{label}: {backend.problem}")
    placement = backend.loaded.placement.describe() if backend.loaded else ""
    print(f"{label}: loaded (and warmed up) in {time.perf_counter() - started:.1f} s; {placement}")
    orientation = Orientation.PORTRAIT if height > width else Orientation.LANDSCAPE
    results = []
    for index, prompt in enumerate(prompts):
        workdir = out / str(index)
        workdir.mkdir(parents=True)
        spec = VideoSpec(prompt, orientation, args.seconds, width, height, args.fps, args.seed, "bench")
        if cuda:
            torch.cuda.reset_peak_memory_stats()
            torch.cuda.synchronize()
        started = time.perf_counter()
        video = await backend.generate(spec, workdir, lambda _: None)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        print(f"{label}: prompt {index + 1}: {seconds:.1f} s, peak {peak:.1f} GiB")
        results.append({"seconds": seconds, "peak_gib": peak, "video": video.video})
    await backend.close()
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return results


def _report(prompts: list[str], vanilla: list[dict[str, Any]], fast: list[dict[str, Any]]) -> None:
    header = ("prompt", "vanilla s", "reelgate s", "speed-up", "peak GiB v/r", "PSNR dB", "SSIM")
    print("\n" + " ".join(f"{name:>{width}}" for name, width in zip(header, (6, 10, 11, 9, 13, 8, 6), strict=True)))
    for index, (v, f) in enumerate(zip(vanilla, fast, strict=True)):
        psnr, ssim = _similarity(v["video"], f["video"])
        print(
            f"{index + 1:>6} {v['seconds']:>10.1f} {f['seconds']:>11.1f} {v['seconds'] / f['seconds']:>8.2f}x "
            f"{v['peak_gib']:>6.1f}/{f['peak_gib']:<6.1f} {psnr:>8.2f} {ssim:>6.3f}"
        )
    total_v = statistics.mean(r["seconds"] for r in vanilla)
    total_f = statistics.mean(r["seconds"] for r in fast)
    print(f"\nmean seconds per video: vanilla {total_v:.1f}, reelgate {total_f:.1f}, speed-up {total_v / total_f:.2f}x")


def _frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def _similarity(a: Path, b: Path) -> tuple[float, float]:
    """Mean PSNR and SSIM (luma, 8x8 windows) over frames of two videos of the same shape."""
    first, second = _frames(a).astype(np.float64), _frames(b).astype(np.float64)
    count = min(len(first), len(second))
    psnrs, ssims = [], []
    for x, y in zip(first[:count], second[:count], strict=True):
        mse = float(np.mean((x - y) ** 2))
        psnrs.append(99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
        ssims.append(_ssim(_luma(x), _luma(y)))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def _luma(frame: np.ndarray) -> np.ndarray:
    return frame @ np.array([0.299, 0.587, 0.114])


def _ssim(x: np.ndarray, y: np.ndarray, window: int = 8) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _mean_filter(x, window), _mean_filter(y, window)
    vx = _mean_filter(x * x, window) - mx**2
    vy = _mean_filter(y * y, window) - my**2
    cov = _mean_filter(x * y, window) - mx * my
    score = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(score.mean())


def _mean_filter(image: np.ndarray, window: int) -> np.ndarray:
    """Means over every `window` x `window` square (valid positions only), by summed-area table."""
    table = np.pad(image, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    sums = table[window:, window:] - table[:-window, window:] - table[window:, :-window] + table[:-window, :-window]
    return sums / window**2


if __name__ == "__main__":
    main()
