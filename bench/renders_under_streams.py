"""Render throughput with few streams open against with many: does serving streams starve the renders?

Starts `reelgate serve` (SQLite, default settings but for the ones named) once per render mode, keeps
C chat streams open (each one a real task; a stream that ends is replaced at once), and counts the
streams that reached `[DONE]` during a window that starts once all C have had their first byte. The
idle figure keeps `--idle-streams` open (enough that the queue never runs dry), the next keeps `--streams`.
`--modes 0 2` compares renders in threads of the server (`REELGATE_RENDER_PROCESSES=0`) with renders in
two child processes.

    .venv/bin/python bench/renders_under_streams.py --streams 1000 --window 30
    .venv/bin/python bench/renders_under_streams.py --modes 0 default --seconds 4 --size 144x256
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from first_byte import free_port, server

PROMPT = "中国街头吃西瓜,生成视频比例9:16"
NUMBERS = itertools.count()


@dataclass
class Counts:
    target: int
    opened: int = 0
    first_bytes: int = 0
    done: list[float] = field(default_factory=list)
    errors: int = 0
    #: Set once `target` streams have had their first byte.
    all_open: asyncio.Event = field(default_factory=asyncio.Event)

    def first_byte(self) -> None:
        self.first_bytes += 1
        if self.first_bytes >= self.target:
            self.all_open.set()


async def one_stream(port: int, key: str, counts: Counts) -> None:
    # A distinct prompt each time: an identical request while its task runs would join that task.
    content = f"{PROMPT} #{next(NUMBERS)}"
    body = json.dumps({"model": "bench", "stream": True, "messages": [{"role": "user", "content": content}]})
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body.encode())}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body.encode())
    counts.opened += 1
    seen_first = False
    tail = b""
    try:
        while chunk := await reader.read(65536):
            if not seen_first:
                seen_first = True
                counts.first_byte()
            tail = (tail + chunk)[-64:]
        if b"[DONE]" in tail:
            counts.done.append(time.monotonic())
        else:
            counts.errors += 1
    finally:
        writer.close()


async def keep_open(port: int, key: str, concurrency: int, counts: Counts, stop: asyncio.Event) -> None:
    async def lane() -> None:
        while not stop.is_set():
            try:
                await one_stream(port, key, counts)
            except OSError:
                counts.errors += 1
                await asyncio.sleep(0.1)

    lanes = [asyncio.create_task(lane()) for _ in range(concurrency)]
    await stop.wait()
    for task in lanes:
        task.cancel()
    await asyncio.gather(*lanes, return_exceptions=True)


async def rate(port: int, key: str, concurrency: int, window: float, ramp_limit: float) -> tuple[float, float]:
    """Renders per second over `window` once `concurrency` streams have their first byte; and the ramp time."""
    counts, stop = Counts(concurrency), asyncio.Event()
    keeper = asyncio.create_task(keep_open(port, key, concurrency, counts, stop))
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(ramp_limit):
            await counts.all_open.wait()
    ramp = time.monotonic() - started
    begin = time.monotonic()
    await asyncio.sleep(window)
    end = time.monotonic()
    stop.set()
    await keeper
    return sum(begin <= t < end for t in counts.done) / (end - begin), ramp


def start_env(data_dir: Path, args: argparse.Namespace, mode: str) -> dict[str, str]:
    model = {"backend": "procedural", "seconds": args.seconds, "fps": args.fps, "portrait": args.size, "price": "0.001"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env.update(
        REELGATE_MODELS=json.dumps({"bench": model}),
        REELGATE_CONFIG=str(data_dir / "none.toml"),
        REELGATE_WORKER_SLOTS=str(args.slots),
    )
    if mode != "default":
        env["REELGATE_RENDER_PROCESSES"] = mode
    return env


def run_mode(mode: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, port = Path(tmp), free_port()
        env = start_env(data_dir, args, mode)
        base = [sys.executable, "-m", "reelgate"]
        create = [*base, "keys", "create", "--balance", "100000", "--data-dir", str(data_dir)]
        key = subprocess.run(create, env=env, capture_output=True, text=True, check=True).stdout.strip()
        command = [*base, "serve", "--port", str(port), "--data-dir", str(data_dir)]
        with server(command, env, f"http://127.0.0.1:{port}/healthz"):
            idle, _ = asyncio.run(rate(port, key, args.idle_streams, args.window, args.ramp))
            busy, ramp = asyncio.run(rate(port, key, args.streams, args.window, args.ramp))
    print(
        f"render_processes={mode:8} idle {idle:6.2f} renders/s   with {args.streams} streams open "
        f"{busy:6.2f} renders/s ({busy / idle:4.0%} of idle; streams opened in {ramp:.1f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000, help="streams held open under load (default 1000)")
    parser.add_argument("--idle-streams", type=int, default=20, help="streams open for the idle row: a full queue")
    parser.add_argument("--window", type=float, default=30, help="seconds renders are counted in (default 30)")
    parser.add_argument("--ramp", type=float, default=60, help="longest wait for all streams' first bytes")
    parser.add_argument("--modes", nargs="+", default=["0", "default"], help="REELGATE_RENDER_PROCESSES values")
    parser.add_argument("--slots", type=int, default=1, help="REELGATE_WORKER_SLOTS (default 1)")
    parser.add_argument("--seconds", type=int, default=4, help="length of each video (default 4)")
    parser.add_argument("--fps", type=int, default=8)
    parser.add_argument("--size", default="144x256", help="portrait size (default 144x256)")
    args = parser.parse_args()
    print(f"{args.seconds} s {args.size} @ {args.fps} fps, {args.slots} worker slot(s), {os.cpu_count()} CPUs")
    for mode in args.modes:
        run_mode(mode, args)


if __name__ == "__main__":
    main()
