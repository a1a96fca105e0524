"""How long a worker's progress write takes to reach a chat stream served by another process (PostgreSQL).

Starts one `reelgate serve` on a fresh PostgreSQL database; the server does not render the bench's
model, this process plays the worker: it claims each task and writes its progress 5, 10, ... 95 (one
step every 100-200 ms), while a chat stream opened on the server reads the `N..` pieces. The delay of
each step is from just before its write transaction began to the stream showing that step or a later
one (one clock: both ends are in this process). Prints the count, p50, p99 and max.

    .venv/bin/python bench/propagation.py [--tasks 5] [--admin-dsn postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from reelgate.store.db import create_engine
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskError
from reelgate.tasks.settle import fail_task

MODELS = {
    "sora-2-hd-15s-chat": {"portrait": "144x256", "fps": 8, "backend": "procedural:bench"},
    "sora-2-hd-10s-chat": {"portrait": "144x256", "fps": 8},
}
STEPS = range(5, 100, 5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one_task(client: httpx.AsyncClient, url: str, key: str, database_url: str, shown: list[int]) -> list[float]:
    written: dict[int, float] = {}
    arrived: dict[int, float] = {}
    task_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def read() -> None:
        body = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "灯塔"}], "stream": True}
        text = ""
        headers = {"Authorization": f"Bearer {key}"}
        async with client.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers) as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                if not task_id.done() and (found := re.search(r"ID: `(task_\w+)`", text)):
                    task_id.set_result(found.group(1))
                for step in map(int, re.findall(r"(\d+)\.\.", text)):
                    arrived.setdefault(step, time.monotonic())

    async def write() -> None:
        engine = create_engine(database_url)
        try:
            tid = await task_id
            async with engine.begin() as conn:
                await repo.claim(conn, tid, "bench-worker", datetime.now(UTC))
            await asyncio.sleep(0.5)  # the stream sees the claim first
            for step in STEPS:
                await asyncio.sleep(random.uniform(0.1, 0.2))
                written[step] = time.monotonic()
                async with engine.begin() as conn:
                    await repo.set_progress(conn, tid, step, datetime.now(UTC))
            await asyncio.sleep(1)
            async with engine.begin() as conn:
                await fail_task(conn, tid, TaskError("bench", "bench over"), datetime.now(UTC), refund=True)
        finally:
            await engine.dispose()

    await asyncio.gather(read(), write())
    shown.append(len(arrived))
    # A step the stream skipped (it showed a later one first) counts until the stream reached it.
    return [min(t for s, t in arrived.items() if s >= step) - written[step] for step in STEPS if step in written]


async def main(tasks: int, admin_dsn: str) -> None:
    name = f"reelgate_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"{admin_dsn.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    data = Path(tempfile.mkdtemp(prefix="reelgate-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env |= {
        "REELGATE_CONFIG": str(data / "absent.toml"),
        "REELGATE_DATABASE_URL": database_url,
        "REELGATE_MODELS": json.dumps(MODELS),
        "REELGATE_RUN_BACKENDS": '["procedural"]',
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data / "server.log").open("wb")
    command = [sys.executable, "-m", "reelgate", "serve", "--port", str(port), "--data-dir", str(data)]
    server = await asyncio.to_thread(subprocess.Popen, command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(timeout=120) as client:
            while True:
                assert server.poll() is None, (data / "server.log").read_text()
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            keys = [sys.executable, "-m", "reelgate", "keys", "create", "--balance", "100", "--data-dir", str(data)]
            made = await asyncio.to_thread(subprocess.run, keys, env=env, capture_output=True, text=True, check=True)
            key = made.stdout.strip()
            delays: list[float] = []
            shown: list[int] = []
            for _ in range(tasks):
                delays += await one_task(client, url, key, database_url, shown)
        delays.sort()
        p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
        print(f"progress write -> stream on another process: {len(delays)} steps over {tasks} tasks")
        print(f"steps the stream showed one by one: {sum(shown)} of {len(delays)}")
        print(f"p50 {statistics.median(delays) * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms  max {delays[-1] * 1000:.1f} ms")
    finally:
        server.terminate()
        server.wait(15)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument(
        "--admin-dsn", default=os.environ.get("REELGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.admin_dsn))
