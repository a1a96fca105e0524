"""A fleet with nothing shared on disk: two `reelgate serve` and two `reelgate worker` processes, each with
its own data folder, one PostgreSQL database and one S3 bucket (moto's server). The servers accept and
bill; only the workers render (the servers run no backend of the model used); every video is completed
once, stored in the bucket, and downloadable from either server."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reelgate.billing.audit import verify_ledger
from reelgate.media.probe import probe
from reelgate.settings import Settings
from reelgate.store.db import create_engine
from reelgate.store.tables import ledger, tasks
from tests.conftest import S3Bucket
from tests.e2e.conftest import Server, server_env
from tests.e2e.test_fleet_start import _launch, _wait_worker_ready

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.s3]

SMALL = {"portrait": "144x256", "landscape": "256x144", "fps": 8}
#: `remote-2s` is rendered by a backend only the workers run (a procedural renderer standing in for a GPU).
MODELS: dict[str, Any] = {
    "sora-2-hd-10s-chat": {**SMALL, "seconds": 2},
    "sora-2-hd-15s-chat": SMALL,
    "remote-2s": {**SMALL, "backend": "procedural:gpu", "seconds": 2, "price": "0.5"},
}
VIDEOS = 40


def _wait_all_done(servers: list[Server], key: str, ids: list[str], timeout: float = 240) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pending, done = list(ids), {}
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} videos not finished"
            for n, video_id in enumerate(list(pending)):
                video = client.get(f"{servers[n % 2].url}/v1/videos/{video_id}").json()
                if video["status"] in ("completed", "failed"):
                    done[video_id] = video
                    pending.remove(video_id)
            time.sleep(0.5)
    return [done[video_id] for video_id in ids]


async def _books(database_url: str) -> tuple[list[str], dict[str, list[str]], dict[str, tuple[int, str]]]:
    """Ledger problems, ledger kinds per task, and each task's (attempts, worker)."""
    engine = create_engine(Settings(database_url=database_url).resolved_database_url)
    try:
        async with engine.connect() as conn:
            problems = await verify_ledger(conn)
            kinds: dict[str, list[str]] = {}
            for task_id, kind in await conn.execute(select(ledger.c.task_id, ledger.c.kind)):
                kinds.setdefault(task_id, []).append(kind)
            rows = await conn.execute(select(tasks.c.id, tasks.c.attempts, tasks.c.worker_id))
            runs = {task_id: (attempts, worker) for task_id, attempts, worker in rows}
    finally:
        await engine.dispose()
    return problems, kinds, runs


def test_two_servers_two_workers_one_bucket(tmp_path: Path, postgres_url: str, s3_bucket: S3Bucket) -> None:
    env = server_env(
        tmp_path,
        MODELS,
        database_url=postgres_url,
        queue_poll_seconds="0.3",
        storage_url=s3_bucket.url,
        s3_endpoint_url=s3_bucket.endpoint,
    )
    servers = [Server(tmp_path / f"server-{n}", {**env, "REELGATE_RUN_BACKENDS": '["procedural"]'}) for n in range(2)]
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for server in servers:
            server.start()
        for n in range(2):
            log = tmp_path / f"worker-{n}.log"
            data = ["--data-dir", str(tmp_path / f"worker-{n}"), "--backend", "procedural:gpu"]
            workers.append(_launch([sys.executable, "-m", "reelgate", "worker", *data], env, log))
            _wait_worker_ready(workers[-1], log)
        key = servers[0].create_key("30")

        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            created = [
                client.post(f"{servers[n % 2].url}/v1/videos", json={"model": "remote-2s", "prompt": f"灯塔 {n}"})
                for n in range(VIDEOS)
            ]
        assert all(response.status_code == 200 for response in created), created[0].text
        videos = _wait_all_done(servers, key, [response.json()["id"] for response in created])

        assert [video["status"] for video in videos] == ["completed"] * VIDEOS
        problems, kinds, runs = asyncio.run(_books(postgres_url))
        assert problems == []
        assert all(kinds[video["id"]] == ["charge"] for video in videos)  # one charge each, nothing refunded
        assert all(runs[video["id"]][0] == 1 for video in videos)  # each rendered by one attempt
        rendered_by = {runs[video["id"]][1].split(":")[1] for video in videos}
        assert rendered_by <= {str(worker.pid) for worker in workers} and len(rendered_by) == 2
        for folder in (server.data_dir / "media" for server in servers):
            assert not folder.exists() or not any(folder.rglob("*.mp4"))
        _downloads_everywhere(servers, key, videos, tmp_path)
    finally:
        for server in servers:
            server.stop()
        for worker in workers:
            worker.terminate()
            worker.wait(15)


def _downloads_everywhere(servers: list[Server], key: str, videos: list[dict[str, Any]], tmp_path: Path) -> None:
    """Each MP4 through either server's `/cdn/` (a redirect to the bucket) and `/v1/videos/{id}/content`."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30, follow_redirects=True) as client:
        for n, video in enumerate(videos):
            link = httpx.URL(video["video_url"])
            server = servers[(n + 1) % 2]  # the other server than the one that answered with the link
            via_cdn = client.get(f"{server.url}{link.path}")
            via_api = client.get(f"{server.url}/v1/videos/{video['id']}/content", headers=auth)
            assert via_cdn.status_code == 200 and via_cdn.history[0].status_code == 302
            assert via_api.status_code == 200 and via_api.content == via_cdn.content
    (tmp_path / "last.mp4").write_bytes(via_cdn.content)
    info = probe(tmp_path / "last.mp4")
    assert (info.width, info.height) == (144, 256) and abs(info.duration - 2.0) < 0.1
