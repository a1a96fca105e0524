"""Shared fixtures: fresh settings and databases per test, an in-process app, the error-envelope check."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.settings import Settings

T = TypeVar("T")

PG_ADMIN_DSN = os.environ.get("REELGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

#: Small and quick renders for everything that is not about the default size.
SMALL_MODELS = {
    "sora-2-hd-15s-chat": {"portrait": "144x256", "landscape": "256x144", "fps": 8},
    "sora-2-hd-10s-chat": {"portrait": "144x256", "landscape": "256x144", "fps": 8},
}


def assert_openai_error(response: httpx.Response, status: int, code: str | None, type_: str | None = None) -> None:
    """The one check of OpenAI's error envelope used everywhere."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] == code
    if type_ is not None:
        assert error["type"] == type_


@pytest.fixture(autouse=True)
def _isolated_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads a developer's own reelgate.toml or REELGATE_* variables, or writes their data folder."""
    for name in list(os.environ):
        if name.startswith("REELGATE_") and name != "REELGATE_TEST_PG":
            monkeypatch.delenv(name)
    monkeypatch.setenv("REELGATE_CONFIG", str(tmp_path / "absent.toml"))
    # The per-user default data folder (platformdirs) lands here, also for child processes.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"data_dir": tmp_path / "data", "models": SMALL_MODELS, "keepalive_seconds": 0.5}
    return Settings(**{**values, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def backends() -> dict[str, Any]:
    """Backends replacing the catalog's by name in `app_client`; override per test module."""
    return {}


@pytest.fixture
async def app_client(settings: Settings, backends: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an app whose lifespan (database, workers) is running."""
    from reelgate.app import create_app

    app = create_app(settings, backends)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@dataclass
class LiveServer:
    """A real uvicorn server on a loopback port, running in the test's own event loop."""

    url: str
    app: Any

    async def create_key(self, balance: str = "10") -> str:
        from reelgate.billing.keys import create_key
        from reelgate.money import parse_credits

        async with self.app.state.runtime.engine.begin() as conn:
            _, secret = await create_key(conn, balance=parse_credits(balance))
        return secret


@asynccontextmanager
async def live_server(settings: Settings, backends: Any = None) -> AsyncIterator[LiveServer]:
    import uvicorn

    from reelgate.app import create_app

    app = create_app(settings, backends)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    running = asyncio.create_task(server.serve())
    while not server.started:
        assert not running.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await running


async def _pg_database() -> str:
    name = f"reelgate_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in another thread (usable from sync fixtures)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test; fails in CI (CI=true) if the server is unreachable."""
    try:
        name = _run(_pg_database())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and unreachable at {PG_ADMIN_DSN}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_DSN}: {exc}")
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    _run(_drop_pg_database(name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh database, on SQLite and on PostgreSQL."""
    from reelgate.store.db import create_engine, migrate

    engine = create_engine(database_url)
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repo_root() -> Iterator[Path]:
    yield Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class S3Bucket:
    """A bucket on moto's S3 server, on a loopback port: `env` configures reelgate (and its children) for it."""

    url: str
    endpoint: str
    env: dict[str, str]


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A fresh bucket on a moto S3 server started for this test; its settings are in the environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    bucket = f"reelgate-{secrets.token_hex(4)}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "REELGATE_STORAGE_URL": f"s3://{bucket}/media",
        "REELGATE_S3_ENDPOINT_URL": endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    httpx.put(f"{endpoint}/{bucket}").raise_for_status()  # moto needs no signature to create a bucket
    yield S3Bucket(env["REELGATE_STORAGE_URL"], endpoint, env)
    server.stop()
