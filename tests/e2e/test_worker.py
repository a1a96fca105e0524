"""`reelgate worker`: a second process renders the tasks of a backend the server does not run."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reelgate.media.probe import probe
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

SMALL = {"portrait": "144x256", "landscape": "256x144", "fps": 8}
#: `remote-2s` names a backend only the worker runs (a procedural renderer standing in for a GPU model).
MODELS: dict[str, Any] = {
    "sora-2-hd-15s-chat": SMALL,
    "sora-2-hd-10s-chat": SMALL,
    "remote-2s": {**SMALL, "backend": "procedural:gpu", "seconds": 2, "price": "0.5"},
}


def _status(server: Server, key: str, video_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/videos/{video_id}", headers={"Authorization": f"Bearer {key}"})
    return response.json()  # type: ignore[no-any-return]


def _worker_of(server: Server, task_id: str) -> str:
    with sqlite3.connect(server.data_dir / "reelgate.db") as db:
        return str(db.execute("SELECT worker_id FROM tasks WHERE id = ?", (task_id,)).fetchone()[0])


def test_a_worker_renders_what_the_server_accepts(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(MODELS, run_backends='["procedural"]', queue_poll_seconds="0.3")
    key = server.create_key("5")
    created = httpx.post(
        f"{server.url}/v1/videos",
        json={"model": "remote-2s", "prompt": "灯塔和海浪"},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    time.sleep(1.5)
    assert _status(server, key, created["id"])["status"] == "queued"  # the server does not render it

    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "reelgate", "worker", "--data-dir", str(server.data_dir), "--backend", "procedural:gpu"],
        env=server.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while (video := _status(server, key, created["id"]))["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline and worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
        assert video["status"] == "completed", video
        assert f":{worker.pid}:" in _worker_of(server, created["id"])
        path = tmp_path / "remote.mp4"
        path.write_bytes(httpx.get(video["video_url"]).content)
        info = probe(path)
        assert (info.width, info.height) == (144, 256) and abs(info.duration - 2.0) < 0.1 and info.has_audio

        # The server still renders its own models itself.
        chat = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": "sora-2-hd-10s-chat", "messages": [{"role": "user", "content": "一只猫"}]},
            headers={"Authorization": key},
            timeout=120,
        )
        content = chat.json()["choices"][0]["message"]["content"]
        assert "生成完成 ✅" in content
        task_id = content.split("ID: `")[1].split("`")[0]
        assert f":{worker.pid}:" not in _worker_of(server, task_id)
    finally:
        worker.terminate()
        assert worker.wait(20) == 0
        log.close()
    assert "worker ready: rendering procedural:gpu" in (tmp_path / "worker.log").read_text()
