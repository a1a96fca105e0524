"""A fleet starts together: servers and workers launched at the same instant on a fresh PostgreSQL
database all come up (the migrations run once, under an advisory lock), and the fleet then works."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

SMALL = {"portrait": "144x256", "landscape": "256x144", "fps": 8}
MODELS = {"sora-2-hd-10s-chat": {**SMALL, "seconds": 2}, "sora-2-hd-15s-chat": SMALL}


def _launch(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_worker_ready(process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "worker ready" not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, f"worker did not become ready:\n{log.read_text(errors='replace')}"
        time.sleep(0.1)


def test_two_servers_and_two_workers_started_together_all_come_up(tmp_path: Path, postgres_url: str) -> None:
    env = server_env(tmp_path, MODELS, database_url=postgres_url, queue_poll_seconds="0.3")
    servers = [Server(tmp_path / f"server-{n}", env) for n in range(2)]
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n, server in enumerate(servers):
            server.log = tmp_path / f"server-{n}.log"
            command = ["serve", "--port", str(server.port), "--data-dir", str(server.data_dir)]
            server.process = _launch([sys.executable, "-m", "reelgate", *command], env, server.log)
        for n in range(2):
            log = tmp_path / f"worker-{n}.log"
            command = [sys.executable, "-m", "reelgate", "worker", "--data-dir", str(tmp_path / f"worker-{n}")]
            workers.append((_launch(command, env, log), log))

        for server in servers:
            server._wait_ready(timeout=60)
        for process, log in workers:
            _wait_worker_ready(process, log)

        # Every process shares the one schema: a key made through one server works on the other.
        key = servers[0].create_key("5")
        reply = httpx.post(
            f"{servers[1].url}/v1/chat/completions",
            json={"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": "灯塔和海浪"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        assert "生成完成 ✅" in reply.json()["choices"][0]["message"]["content"]
    finally:
        for server in servers:
            server.stop()
        for process, _ in workers:
            process.terminate()
            process.wait(15)
