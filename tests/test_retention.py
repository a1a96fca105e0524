"""Retention: expired files are deleted and answer 410, the task stays; with 0 days nothing is deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.billing import keys
from reelgate.storage.local import LocalStorage
from reelgate.store.tables import tasks
from reelgate.tasks import repository as repo
from reelgate.workers.retention import expire_files
from tests.api.test_observability import _chat, _key
from tests.conftest import assert_openai_error, make_settings
from tests.store.test_store import _task


@asynccontextmanager
async def _client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    from reelgate.app import create_app

    app = create_app(make_settings(tmp_path, **settings))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


def _runtime(client: httpx.AsyncClient) -> Any:
    return client.app.state.runtime  # type: ignore[attr-defined]


async def _completed_task(client: httpx.AsyncClient) -> dict[str, Any]:
    task_id = await _chat(client, await _key(client))
    source = (await client.get(f"/source/{task_id}")).json()
    assert source["status"] == "completed" and source["files_expired"] is False
    return source


def _files(client: httpx.AsyncClient, source: dict[str, Any]) -> list[Path]:
    root = _runtime(client).storage.root
    return [root / url.split("/cdn/", 1)[1] for url in (source["video_url"], source["thumbnail_url"])]


async def test_expired_files_are_deleted_and_answer_410(tmp_path: Path) -> None:
    async with _client(tmp_path, retention_days=1) as client:
        source = await _completed_task(client)
        assert source["expires_at"] == source["created_at"] + 86_400
        files = _files(client, source)
        rt = _runtime(client)
        # A spritesheet made on request is one of the task's files too, and expires with them.
        files.append(rt.storage.local_path(await rt.tasks.spritesheet(await rt.tasks.get(source["id"]))))

        assert await expire_files(rt.engine, rt.storage) == []  # not yet due
        assert all(path.is_file() for path in files)

        later = datetime.now(UTC) + timedelta(days=1, minutes=1)
        assert await expire_files(rt.engine, rt.storage, now=later) == [source["id"]]
        assert not any(path.exists() for path in files)
        assert await expire_files(rt.engine, rt.storage, now=later) == []  # a second sweep changes nothing

        for url in (source["video_url"], source["thumbnail_url"]):
            gone = await client.get(url)
            assert_openai_error(gone, 410, "expired", "invalid_request_error")
            expiry = datetime.fromtimestamp(source["expires_at"], UTC)
            message = f"This video expired on {expiry:%Y-%m-%d %H:%M} UTC and its files were deleted."
            assert gone.json()["error"]["message"] == message
        after = await client.get(f"/source/{source['id']}")
        assert after.status_code == 200
        assert after.json() == {**source, "files_expired": True}
        page = await client.get(f"/web/{source['id']}")
        assert page.status_code == 200 and "This video expired on" in page.text
        # A file nobody ever stored is still a plain 404.
        assert_openai_error(await client.get("/cdn/20200101/" + "0" * 32 + ".mp4"), 404, "not_found")


async def test_the_periodic_sweep_deletes_without_help(tmp_path: Path) -> None:
    async with _client(tmp_path, retention_days=1, retention_sweep_seconds=0.05) as client:
        source = await _completed_task(client)
        async with _runtime(client).engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await conn.execute(update(tasks).where(tasks.c.id == source["id"]).values(expires_at=past))
        for _ in range(100):
            if (await client.get(f"/source/{source['id']}")).json()["files_expired"]:
                break
            await asyncio.sleep(0.05)
        assert (await client.get(f"/source/{source['id']}")).json()["files_expired"] is True
        assert not any(path.exists() for path in _files(client, source))


async def test_zero_days_keeps_everything(tmp_path: Path) -> None:
    async with _client(tmp_path, retention_sweep_seconds=0.05) as client:
        source = await _completed_task(client)
        assert source["expires_at"] is None
        rt = _runtime(client)
        assert not any(task.get_name() == "reelgate-retention" for task in asyncio.all_tasks())
        assert await expire_files(rt.engine, rt.storage, now=datetime.now(UTC) + timedelta(days=3650)) == []
        assert all(path.is_file() for path in _files(client, source))
        assert (await client.get(source["video_url"])).status_code == 200


async def test_local_delete_is_idempotent(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"not really a video")
    key = await storage.put(source, "mp4")
    assert storage.local_path(key) is not None
    await storage.delete(key)
    await storage.delete(key)
    await storage.delete("../../etc/passwd")  # never a valid key: ignored
    assert storage.local_path(key) is None


async def test_expiry_queries_on_each_database(engine: AsyncEngine) -> None:
    """The sweep's SQL and the file lookup (migration 0003's indexes) on SQLite and PostgreSQL."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        key, _ = await keys.create_key(conn, balance=10_000_000)
        due, kept = _task(key.id), _task(key.id)
        for task, expires in ((due, now - timedelta(hours=1)), (kept, now + timedelta(hours=1))):
            await repo.insert_task(conn, task)
            await repo.claim(conn, task.id, "worker", now)
            await conn.run_sync(
                repo.complete_sync,
                task.id,
                share_id=f"s_{task.id[-8:]}",
                video_file=f"v-{task.id}",
                thumbnail_file=f"t-{task.id}",
                now=now,
            )
            await conn.execute(update(tasks).where(tasks.c.id == task.id).values(expires_at=expires))
    async with engine.begin() as conn:
        assert [task.id for task in await repo.expired_tasks(conn, now, 10)] == [due.id]
        marked = await repo.expire_files(conn, due.id)
        assert marked is not None and marked.files_expired
        assert await repo.expire_files(conn, due.id) is None  # only once
    async with engine.connect() as conn:
        found = await repo.task_for_file(conn, f"t-{due.id}")
        assert found is not None and found.id == due.id and found.files_expired
        assert await repo.task_for_file(conn, "nothing") is None
