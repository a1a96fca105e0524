"""Time from request to the first content chunk of a chat stream: reelgate vs a bare FastAPI SSE endpoint.

Starts both servers on loopback ports, sends N streamed requests to each, one at a time, and prints
p50/p99 of the time to the first `data:` line carrying content, and the ratio of reelgate to the floor.
reelgate's requests are real: each one (with its own prompt) authenticates, charges a key and inserts a
task (rendered in the background on a tiny model) before its first chunk leaves.

    .venv/bin/python bench/first_byte.py --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TINY = {"bench-tiny": {"backend": "procedural", "seconds": 1, "fps": 8, "portrait": "64x112", "price": "0.001"}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} never answered")


@contextmanager
def server(command: list[str], env: dict[str, str], probe_url: str) -> Iterator[None]:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(probe_url, process)
        yield
    finally:
        process.terminate()
        process.wait(15)


def first_chunk_seconds(client: httpx.Client, url: str, headers: dict[str, str], body: dict) -> float:  # type: ignore[type-arg]
    start = time.perf_counter()
    with client.stream("POST", url, headers=headers, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and '"content"' in line:
                return time.perf_counter() - start
    raise RuntimeError("stream ended without content")


def measure(url: str, headers: dict[str, str], body: Callable[[int], dict], n: int) -> list[float]:  # type: ignore[type-arg]
    with httpx.Client(timeout=30) as client:
        for i in range(5):  # warm-up: imports, connection pools, SQLite page cache
            first_chunk_seconds(client, url, headers, body(-1 - i))
        return [first_chunk_seconds(client, url, headers, body(i)) for i in range(n)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def report(name: str, values: list[float]) -> float:
    p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
    mean = statistics.mean(values) * 1000
    print(f"{name:10} n={len(values)}  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  mean {mean:7.2f} ms")
    return p50


def run_reelgate(n: int, data_dir: Path) -> list[float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env.update(REELGATE_MODELS=json.dumps(TINY), REELGATE_CONFIG=str(data_dir / "none.toml"))
    base = [sys.executable, "-m", "reelgate"]
    key = subprocess.run(
        [*base, "keys", "create", "--balance", "1000", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    command = [*base, "serve", "--port", str(port), "--data-dir", str(data_dir)]

    def body(i: int) -> dict:  # type: ignore[type-arg]
        # Each request its own prompt: the same one again would join the running task (resend protection).
        message = {"role": "user", "content": f"中国街头吃西瓜 {i},生成视频比例9:16"}
        return {"model": "bench-tiny", "stream": True, "messages": [message]}

    with server(command, env, f"http://127.0.0.1:{port}/healthz"):
        return measure(f"http://127.0.0.1:{port}/v1/chat/completions", {"Authorization": key}, body, n)


def run_bare(n: int) -> list[float]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "bare_sse:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with server(command, dict(os.environ), f"http://127.0.0.1:{port}/docs"):
        return measure(f"http://127.0.0.1:{port}/v1/chat/completions", {}, lambda _: {"model": "x", "stream": True}, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="streamed requests per server (default 200)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reelgate = run_reelgate(args.requests, Path(tmp))
    bare = run_bare(args.requests)
    print(f"first content chunk, {args.requests} sequential streamed requests each, loopback")
    ours, floor = report("reelgate", reelgate), report("bare SSE", bare)
    print(f"ratio p50 reelgate / bare: {ours / floor:.2f}x")


if __name__ == "__main__":
    main()
