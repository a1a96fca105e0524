"""A real `reelgate serve` process on a loopback port, and the CLI beside it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

#: The provider's client.py, copied verbatim from the project's shared seed folder so a clean clone has it.
SEED_CLIENT = Path(__file__).resolve().parent / "seed" / "client.py"
#: The original, beside the repository in a developer's checkout (absent in CI).
SHARED_SEED_CLIENT = Path(__file__).resolve().parents[3] / "shared" / "seed" / "client.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    #: A command the server runs under, e.g. `["bash", "-c", 'ulimit -f 1000; exec "$@"', "-"]`.
    wrapper: list[str] = field(default_factory=list)
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log = self.data_dir.parent / f"server-{time.monotonic_ns()}.log"
        command = [
            *self.wrapper,
            sys.executable,
            "-m",
            "reelgate",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server did not become ready:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no cleanup, as when a machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "reelgate", *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def create_key(self, balance: str = "10") -> str:
        return self.cli("keys", "create", "--balance", balance, "--name", "e2e").strip()


def server_env(tmp_path: Path, models: dict[str, Any] | None = None, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env["REELGATE_CONFIG"] = str(tmp_path / "absent.toml")
    env["PYTHONUNBUFFERED"] = "1"
    if models is not None:
        env["REELGATE_MODELS"] = json.dumps(models)
    env.update({f"REELGATE_{name.upper()}": value for name, value in settings.items()})
    return env


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def make(models: dict[str, Any] | None = None, **settings: str) -> Server:
        server = Server(tmp_path / "data", server_env(tmp_path, models, **settings))
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
