"""`run_sync` writes on a SQLite file: on the event loop while the writer's lock is free, in a worker thread
that waits for it while another connection holds it, and checkpointed into the database file either way."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.store.db import create_engine, run_sync


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, Path]]:
    path = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield engine, path
    await engine.dispose()


def _insert(body: str, threads: list[int]) -> object:
    def work(conn: Connection) -> int:
        threads.append(threading.get_ident())
        conn.execute(text("INSERT INTO notes (body) VALUES (:body)"), {"body": body})
        return int(conn.execute(text("SELECT count(*) FROM notes")).scalar_one())

    return work


async def test_a_write_runs_on_the_event_loop_when_the_lock_is_free(sqlite_file: tuple[AsyncEngine, Path]) -> None:
    engine, _ = sqlite_file
    threads: list[int] = []
    assert await run_sync(engine, _insert("one", threads), write=True) == 1
    assert await run_sync(engine, _insert("two", threads), write=True) == 2
    assert threads == [threading.get_ident()] * 2


async def test_a_write_waits_in_a_thread_while_another_connection_writes(
    sqlite_file: tuple[AsyncEngine, Path],
) -> None:
    engine, path = sqlite_file
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's transaction holds the writer's lock
    other.execute("INSERT INTO notes (body) VALUES ('theirs')")
    threads: list[int] = []
    writing = asyncio.create_task(run_sync(engine, _insert("ours", threads), write=True))
    await asyncio.sleep(0.3)
    assert not writing.done()  # it waits, neither failing nor blocking the loop (this sleep ran)
    other.execute("COMMIT")
    assert await asyncio.wait_for(writing, 10) == 2
    # Tried on the loop first (refused at once, rolled back), then run whole again in a worker thread.
    assert threads[0] == threading.get_ident() and threads[-1] != threading.get_ident()
    rows = other.execute("SELECT body FROM notes ORDER BY id").fetchall()
    assert rows == [("theirs",), ("ours",)]
    other.close()


async def test_a_failing_write_is_not_tried_again(sqlite_file: tuple[AsyncEngine, Path]) -> None:
    engine, path = sqlite_file
    calls: list[int] = []

    def work(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("INSERT INTO notes (body) VALUES ('half')"))
        conn.execute(text("INSERT INTO notes (body) VALUES (NULL)"))

    with pytest.raises(Exception, match="NOT NULL"):
        await run_sync(engine, work, write=True)
    assert calls == [1]
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM notes").fetchone() == (0,)


async def test_writes_on_the_loop_reach_the_database_file(sqlite_file: tuple[AsyncEngine, Path]) -> None:
    """The loop's connection never checkpoints itself; a worker thread does, soon after its commits."""
    engine, path = sqlite_file
    threads: list[int] = []
    for i in range(20):
        await run_sync(engine, _insert(f"note {i}", threads), write=True)
    assert set(threads) == {threading.get_ident()}

    def in_the_file() -> int:
        # `immutable=1` reads the database file alone, not what is still only in the WAL.
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as reader:
            try:
                return int(reader.execute("SELECT count(*) FROM notes").fetchone()[0])
            except sqlite3.OperationalError:  # no such table: not even the table is in the file yet
                return -1

    for _ in range(100):
        if in_the_file() == 20:
            break
        await asyncio.sleep(0.05)
        await run_sync(engine, lambda conn: conn.execute(text("UPDATE notes SET body = body WHERE id = 0")), write=True)
    assert in_the_file() == 20
