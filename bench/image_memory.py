"""Peak memory of reference images: 8 worst-case images decoded and fitted at once, as 8 requests would.

    .venv/bin/python bench/image_memory.py            # every case, each in a fresh process
    .venv/bin/python bench/image_memory.py png jpeg   # some cases

Each case runs in its own process and prints the process's RSS before, its peak (ru_maxrss) and its
RSS after the images are dropped: what a server pays for 8 such uploads, and what it keeps.
"""

from __future__ import annotations

import asyncio
import gc
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

CONCURRENT = 8
SIDE = 6300  # under the old 40 Mpx cap: 39.7 Mpx


def worst_case(kind: str) -> bytes:
    """A small file with a huge header size: one colour compresses to almost nothing."""
    image = Image.new("RGBA" if kind == "png-alpha" else "RGB", (SIDE, SIDE), (200, 40, 90, 128))
    out = io.BytesIO()
    if kind.startswith("png"):
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format=kind.upper(), quality=80)
    return out.getvalue()


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 2**20


async def run_case(kind: str, data: bytes) -> None:
    from reelgate.api.references import reference_image
    from reelgate.inputs.images import fit_cover
    from reelgate.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    gc.collect()
    before = rss_mib()

    async def one() -> None:
        image = await reference_image(data, settings, "input_reference")
        await asyncio.to_thread(fit_cover, image, 1024, 1792)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(CONCURRENT)))
    elapsed = time.perf_counter() - started
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{kind:10} file {len(data) / 1024:7.1f} KiB  x{CONCURRENT}: rss before {before:6.0f} MiB  "
        f"peak {peak:6.0f} MiB  after {rss_mib():6.0f} MiB  ({elapsed:.2f} s)",
        flush=True,
    )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(run_case(sys.argv[2], Path(sys.argv[3]).read_bytes()))
        return
    with tempfile.TemporaryDirectory() as scratch:
        for kind in sys.argv[1:] or ["png", "png-alpha", "jpeg", "webp"]:
            source = Path(scratch) / kind
            source.write_bytes(worst_case(kind))  # made here, so the child's peak is the decoding alone
            subprocess.run([sys.executable, __file__, "--child", kind, str(source)], check=True)


if __name__ == "__main__":
    main()
