"""`reelgate serve --processes 2`: two real server processes on one real port, as a user runs them."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from reelgate.catalog import BUILTIN
from reelgate.serving import gpu_refusal
from reelgate.settings import Settings
from tests.e2e.conftest import Server, server_env

pytestmark = pytest.mark.e2e

T = TypeVar("T")

SMALL = {"portrait": "144x256", "landscape": "256x144", "fps": 8}
#: Big enough that a render takes seconds: a crowd arrives while its task runs, a SIGTERM lands mid-render.
MEDIUM = {"portrait": "576x1024", "landscape": "1024x576", "fps": 24}
MODELS = {"sora-2-hd-10s-chat": SMALL, "sora-2-hd-15s-chat": MEDIUM}
HEALTHZ = re.compile(r"\[(\d+)\] reelgate\.access: .* \"GET /healthz ")
CHAT = re.compile(r"\[(\d+)\] reelgate\.access: .* \"POST /v1/chat/completions ")
STARTED = re.compile(r"\[(\d+)\] uvicorn\.error: Application startup complete")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`reelgate serve` in two processes (a short lease: a task cut short is soon taken for lost)."""
    started = Server(tmp_path / "data", server_env(tmp_path, MODELS, server_processes="2", lease_seconds="2"))
    started.start()
    yield started
    started.stop()


def wait_started(server: Server, count: int = 2, timeout: float = 60) -> list[int]:
    """The pids of the server's processes once `count` of them have started (since it was started)."""
    deadline = time.monotonic() + timeout
    while len(pids := STARTED.findall(server.output())) < count:
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)
    return [int(pid) for pid in pids]


def served_by(server: Server, line: re.Pattern[str]) -> set[int]:
    return {int(pid) for pid in line.findall(server.output())}


def crowd(count: int, request: Callable[[], T]) -> list[T]:
    """`request()` made `count` times at once, each on its own connection."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: request(), range(count)))


def healthz_count(server: Server) -> float:
    found = re.search(
        r'reelgate_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)',
        httpx.get(f"{server.url}/metrics").text,
    )
    return float(found.group(1)) if found else 0.0


def test_both_processes_answer_on_the_port_and_metrics_count_them_all(server: Server) -> None:
    pids = wait_started(server)
    sent = 0
    while served_by(server, HEALTHZ) != set(pids) and sent < 1000:
        assert all(r.status_code == 200 for r in crowd(20, lambda: httpx.get(f"{server.url}/healthz")))
        sent += 20
    assert served_by(server, HEALTHZ) == set(pids), server.output()

    # Whichever process answers a scrape, it counts the requests both processes served.
    deadline = time.monotonic() + 10
    while healthz_count(server) != sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [healthz_count(server) for _ in range(6)] == [sent] * 6
    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ok"


def _task_id_of_stream(server: Server, key: str, prompt: str) -> str:
    body = {"model": "sora-2-hd-15s-chat", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}, timeout=60
    ) as response:
        assert response.status_code == 200
        return next(line.split("ID: `")[1].split("`")[0] for line in response.iter_lines() if "ID: `" in line)


def _wait_ended(server: Server, task_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (task := httpx.get(f"{server.url}/source/{task_id}").json())["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
    return task


def _charges(server: Server) -> list[tuple[str, int]]:
    with sqlite3.connect(server.data_dir / "reelgate.db") as db:
        return db.execute("SELECT task_id, amount FROM ledger WHERE kind = 'charge'").fetchall()


def test_identical_requests_across_processes_make_one_task_and_one_charge(server: Server) -> None:
    pids = wait_started(server)
    key = server.create_key("10")
    crowds: list[set[str]] = []
    # Until one crowd is spread over both processes (a new prompt each time: a new task).
    while served_by(server, CHAT) != set(pids) and len(crowds) < 5:
        prompt = f"雨夜的霓虹街道 {len(crowds)}"
        crowds.append(set(crowd(24, partial(_task_id_of_stream, server, key, prompt))))
    assert served_by(server, CHAT) == set(pids), server.output()

    assert all(len(task_ids) == 1 for task_ids in crowds), crowds
    charged = sorted(task_id for task_ids in crowds for task_id in task_ids)
    assert sorted(task_id for task_id, _ in _charges(server)) == charged
    assert "ledger ok" in server.cli("ledger", "verify")


def test_a_keys_rate_limit_counts_the_requests_of_every_process(server: Server) -> None:
    pids = wait_started(server)
    key = server.cli("keys", "create", "--balance", "100", "--rpm", "3", "--name", "limited").strip()
    prompts = iter(range(1000))

    def post() -> int:  # a new prompt each time: an identical request would join the first one's task
        body = {"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": f"狐狸 {next(prompts)}"}]}
        reply = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": key}, timeout=60)
        return reply.status_code

    statuses: list[int] = []
    while served_by(server, CHAT) != set(pids) and len(statuses) < 60:  # until both processes took some
        statuses += crowd(12, post)
    assert served_by(server, CHAT) == set(pids), server.output()
    assert statuses.count(200) == 3
    assert statuses.count(429) == len(statuses) - 3


def test_sigterm_stops_every_process_and_a_task_cut_short_is_finished_after_restart(server: Server) -> None:
    pids = wait_started(server)
    key = server.create_key("10")
    task_id = _task_id_of_stream(server, key, "雪山下的红色火车")
    deadline = time.monotonic() + 60
    while httpx.get(f"{server.url}/source/{task_id}").json()["status"] != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0, server.output()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    server.start()
    task = _wait_ended(server, task_id)
    assert task["status"] == "completed", task
    assert _charges(server) == [(task_id, -1_000_000)]


def test_a_process_killed_mid_render_is_replaced_and_its_task_finished(server: Server) -> None:
    wait_started(server)
    key = server.create_key("10")
    task_id = _task_id_of_stream(server, key, "沙漠里的骆驼")
    deadline = time.monotonic() + 60
    while not (found := re.search(rf"\[(\d+)\] reelgate\.workers\.runner: task {task_id}: started", server.output())):
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)

    os.kill(int(found.group(1)), signal.SIGKILL)
    task = _wait_ended(server, task_id)
    assert task["status"] == "completed", task
    assert _charges(server) == [(task_id, -1_000_000)]
    assert len(wait_started(server, count=3)) == 3  # the supervisor started a third process in its place
    assert httpx.get(f"{server.url}/readyz").status_code == 200


def test_a_taken_port_is_refused_before_any_process_starts(server: Server, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "reelgate", "serve", "--processes", "2", "--port", str(server.port)]
    command += ["--data-dir", str(tmp_path / "other")]
    second = subprocess.run(command, env=server_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr
    assert "reelgate serve --port" in second.stderr


#: A model on the local GPU backend; never loaded here: the processes either refuse it or leave it to a worker.
GPU_MODELS = {**MODELS, "wan-t2v": {**SMALL, "backend": "diffusers:wan", "options": {"family": "wan", "weights": "/x"}}}


def test_a_gpu_model_is_refused_before_any_process_starts_or_the_database_is_migrated(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "reelgate", "serve", "--processes", "2", "--port", "0"]
    command += ["--data-dir", str(tmp_path / "data")]
    refused = subprocess.run(command, env=server_env(tmp_path, GPU_MODELS), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "cannot serve in 2 processes" in refused.stderr
    assert "'wan-t2v' (backend diffusers:wan)" in refused.stderr
    assert """`REELGATE_RUN_BACKENDS='["procedural"]' reelgate serve --processes 2`""" in refused.stderr
    assert "`reelgate worker --backend diffusers:wan`" in refused.stderr
    assert "Started server process" not in refused.stdout + refused.stderr
    assert not (tmp_path / "data").exists()  # not even the database was made


def test_processes_that_leave_the_gpu_model_to_a_worker_serve_it(tmp_path: Path) -> None:
    env = server_env(tmp_path, GPU_MODELS, server_processes="2", run_backends='["procedural"]')
    server = Server(tmp_path / "data", env)
    server.start()
    try:
        wait_started(server)
        key = server.create_key("10")
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{server.url}/v1/videos", json={"model": "wan-t2v", "prompt": "灯塔"}, headers=headers)
        assert created.status_code == 200, created.text
        assert created.json()["status"] == "queued"  # waiting for a `reelgate worker --backend diffusers:wan`
    finally:
        server.stop()


def test_a_gpu_model_this_server_would_render_is_refused_whatever_else_it_renders() -> None:
    named = Settings(models=GPU_MODELS, server_processes=3, run_backends=["procedural", "diffusers:wan"])
    assert "`REELGATE_RUN_BACKENDS='[\"procedural\"]' reelgate serve --processes 3`" in str(gpu_refusal(named))
    # Only GPU models: the servers are told to render a backend no model uses, that is nothing.
    only_gpu = {entry.name: {"enabled": False} for entry in BUILTIN}
    alone = Settings(models={**only_gpu, "wan-t2v": GPU_MODELS["wan-t2v"]}, server_processes=2)
    assert "REELGATE_RUN_BACKENDS='[\"procedural\"]'" in str(gpu_refusal(alone))
    assert gpu_refusal(Settings(models=GPU_MODELS, server_processes=2, run_backends=["procedural"])) is None
