"""A fleet on PostgreSQL: a chat stream on a server follows a task a worker process renders, step by
step; that worker is SIGKILLed mid-render, another finishes the task after the lease, the dead
worker's late writes are refused by the fence, the task is charged once and the ledger verifies."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.store.db import create_engine
from reelgate.tasks import repository as repo
from reelgate.tasks.models import TaskError, TaskStatus
from reelgate.tasks.settle import fail_task
from tests.e2e.conftest import Server, server_env
from tests.e2e.test_fleet_start import _launch, _wait_worker_ready

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

#: `procedural:gpu` is run by the workers only; big enough that a render takes several seconds.
MODELS: dict[str, Any] = {
    "sora-2-hd-15s-chat": {"portrait": "576x1024", "fps": 24, "backend": "procedural:gpu"},
    "sora-2-hd-10s-chat": {"portrait": "144x256", "landscape": "256x144", "fps": 8},
}


def _worker(server: Server, name: str) -> subprocess.Popen[bytes]:
    """A worker process; media go to the server's folder (a bucket is `test_fleet_s3.py`'s subject)."""
    log = server.data_dir.parent / f"{name}.log"
    command = [sys.executable, "-m", "reelgate", "worker", "--data-dir", str(server.data_dir)]
    process = _launch([*command, "--backend", "procedural:gpu"], server.env, log)
    _wait_worker_ready(process, log)
    return process


def _source(server: Server, task_id: str) -> dict[str, Any]:
    return httpx.get(f"{server.url}/source/{task_id}").json()  # type: ignore[no-any-return]


async def _late_writes(database_url: str, task_id: str, attempt: int) -> dict[str, object]:
    """What the dead worker would still write, as its attempt: each refused (None or False)."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    try:
        async with engine.begin() as conn:
            return {
                "progress": await repo.set_progress(conn, task_id, 99, now, attempt=attempt),
                "heartbeat": await repo.heartbeat(conn, task_id, now, attempt=attempt),
                "state": await repo.save_backend_state(conn, task_id, "late", now, attempt=attempt),
                "complete": await conn.run_sync(
                    repo.complete_sync,
                    task_id,
                    share_id="late",
                    video_file="late.mp4",
                    thumbnail_file="t",
                    now=now,
                    attempt=attempt,
                ),
                "fail": await fail_task(conn, task_id, TaskError("x", "late"), now, refund=True, attempt=attempt),
            }
    finally:
        await engine.dispose()


def test_a_killed_workers_task_is_finished_by_another_and_charged_once(tmp_path: Path, postgres_url: str) -> None:
    env = server_env(tmp_path, MODELS, database_url=postgres_url, lease_seconds="3", queue_poll_seconds="0.5") | {
        "REELGATE_RUN_BACKENDS": '["procedural"]'
    }
    server = Server(tmp_path / "server", env)
    server.start()
    first = _worker(server, "worker-1")
    second: subprocess.Popen[bytes] | None = None
    try:
        key = server.create_key("5")
        body = {"model": "sora-2-hd-15s-chat", "messages": [{"role": "user", "content": "雪山下的红色火车"}]}
        text = ""
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json={**body, "stream": True}, headers=headers, timeout=180
        ) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data: {"):
                    continue
                text += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                match = re.search(r"ID: `(task_\w+)`", text)
                if second is None and match and _source(server, match.group(1))["progress"] >= 20:
                    first.kill()  # SIGKILL mid-render: no cleanup, no last write
                    first.wait(10)
                    second = _worker(server, "worker-2")
        assert "生成完成 ✅" in text, text
        task_id = re.search(r"ID: `(task_\w+)`", text).group(1)  # type: ignore[union-attr]
        steps = [int(n) for n in re.findall(r"(\d+)\.\.", text)]
        # Steps crossed from the worker to the stream (at most two a second: PROGRESS_SPACING_SECONDS).
        assert steps == sorted(steps) and len(steps) >= 4 and steps[-1] == 100, text

        task = _source(server, task_id)
        assert task["status"] == "completed" and httpx.get(task["video_url"]).status_code == 200
        late = asyncio.run(_late_writes(postgres_url, task_id, attempt=1))
        assert late == {"progress": None, "heartbeat": False, "state": False, "complete": None, "fail": None}
        assert _source(server, task_id)["status"] == "completed"
        engine_check = asyncio.run(_stored(postgres_url, task_id))
        assert engine_check == (TaskStatus.COMPLETED, 2, ["charge"])
        assert "ok" in server.cli("ledger", "verify").lower()
    finally:
        server.stop()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)


async def _stored(database_url: str, task_id: str) -> tuple[TaskStatus, int, list[str]]:
    from reelgate.billing import ledger

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            task = await repo.get_task(conn, task_id)
            assert task is not None
            kinds = [e.kind for e in await ledger.entries(conn, task.key_id) if e.task_id == task_id]
            return task.status, task.attempts, kinds
    finally:
        await engine.dispose()
