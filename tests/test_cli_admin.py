"""`reelgate keys ...` and `reelgate usage`, on the database directly and against a running server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from reelgate.backends.fake import FailingBackend, GatedBackend
from reelgate.billing.audit import verify_ledger
from reelgate.cli import app
from reelgate.store.db import create_engine
from tests.api.test_admin import DAY1, TOKEN, add_task
from tests.conftest import live_server, make_settings

KEY_ID = re.compile(r"key_[0-9a-z]{26}")


class Cli:
    """Runs `reelgate ...` in-process on one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, **env: str) -> Result:
        result = self.runner.invoke(app, [*args, "--data-dir", str(self.data_dir)], env=env or None)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    def new_key(self, *args: str) -> tuple[str, str]:
        """(id, secret) of a new key."""
        result = self("keys", "create", *args)
        found = KEY_ID.search(result.stderr)
        assert found, result.stderr
        return found.group(), result.stdout.strip()

    def verify(self) -> None:
        assert self("ledger", "verify").stdout.strip() == "ledger ok"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_create_with_every_option(cli: Cli) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    key_id, secret = cli.new_key(
        "--balance", "2.5", "--name", "bob", "--expires", expires.isoformat(), "--models", "sora-2-hd-10s-chat, x",
        "--rpm", "30", "--concurrency", "2",
    )  # fmt: skip
    assert secret.startswith("sk-")
    shown = cli("keys", "show", key_id).stdout
    assert f'"id": "{key_id}"' in shown and secret not in shown
    for expected in ('"balance": "2.5"', '"rpm_limit": 30', '"concurrency_limit": 2', '"name": "bob"'):
        assert expected in shown
    assert f'"expires_at": {int(expires.timestamp())}' in shown
    assert '"allowed_models": [\n    "sora-2-hd-10s-chat",\n    "x"\n  ]' in shown
    line = cli("keys", "list").stdout.strip()
    assert line.startswith(key_id) and line.split()[2:5] == ["2.5", "active", "bob"]


def test_top_up_adjust_and_the_ledger(cli: Cli) -> None:
    key_id, _ = cli.new_key("--balance", "10")
    assert (
        cli("keys", "topup", key_id, "5", "--reason", "top-up").stdout.strip()
        == "credit 5: balance 15 (ledger entry 2)"
    )
    negative = cli("keys", "topup", key_id, "-2.5", "--reason", "misbilled").stdout.strip()
    assert negative == "adjustment -2.5: balance 12.5 (ledger entry 3)"
    refused = cli("keys", "topup", key_id, "-13", "--reason", "too much", code=1)
    assert "below zero" in refused.stderr
    lines = cli("keys", "ledger", key_id).stdout.splitlines()
    assert [line.split()[3:6] for line in lines] == [
        ["adjustment", "-2.5", "12.5"],
        ["credit", "5", "15"],
        ["credit", "10", "10"],
    ]
    assert lines[0].endswith("misbilled") and lines[2].endswith("initial balance")
    first = cli("keys", "ledger", key_id, "--limit", "2")
    assert len(first.stdout.splitlines()) == 2 and "more: --after 2" in first.stderr
    assert [line.split()[0] for line in cli("keys", "ledger", key_id, "--after", "2").stdout.splitlines()] == ["1"]
    cli.verify()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "topup", "KEY", "ten", "--reason", "x"], "amount"),
        (["keys", "topup", "KEY", "1", "--reason", " "], "reason"),
        (["keys", "topup", "KEY", "0", "--reason", "x"], "zero"),
        (["keys", "create", "--balance", "-1"], "balance"),
        (["keys", "create", "--expires", "soon"], "expires_at"),
        (["keys", "update", "KEY", "--rpm", "lots"], "rpm_limit"),
        (["usage", "--since", "yesterday"], "since"),
    ],
)
def test_bad_input_changes_nothing(cli: Cli, args: list[str], message: str) -> None:
    key_id, _ = cli.new_key("--balance", "1")
    before = cli("keys", "ledger", key_id).stdout
    result = cli.runner.invoke(
        app, [key_id if arg == "KEY" else arg for arg in args] + ["--data-dir", str(cli.data_dir)]
    )
    assert result.exit_code in (1, 2) and message in result.stderr, (result.stdout, result.stderr)
    assert cli("keys", "ledger", key_id).stdout == before
    assert len(cli("keys", "list").stdout.splitlines()) == 1
    cli.verify()


def test_topup_without_a_reason_is_refused(cli: Cli) -> None:
    key_id, _ = cli.new_key()
    result = cli("keys", "topup", key_id, "1", code=2)
    assert "--reason" in result.stderr


def test_unknown_keys(cli: Cli) -> None:
    for args in (["show"], ["disable"], ["enable"], ["delete"], ["ledger"], ["tasks"], ["topup", "1", "--reason", "x"]):
        result = cli("keys", args[0], "key_nope", *args[1:], code=1)
        assert "No API key found with id 'key_nope'" in result.stderr


def test_disable_enable_update_delete(cli: Cli) -> None:
    key_id, _ = cli.new_key("--name", "a", "--rpm", "5", "--models", "sora-2-hd-10s-chat")
    assert cli("keys", "disable", key_id).stdout.split()[3] == "disabled"
    assert cli("keys", "enable", key_id).stdout.split()[3] == "active"
    updated = cli(
        "keys", "update", key_id, "--name", "b", "--rpm", "default", "--models", "all", "--expires", "2020-01-01"
    )
    assert updated.stdout.split()[3:] == ["expired", "b"]
    shown = cli("keys", "show", key_id).stdout
    assert '"rpm_limit": null' in shown and '"allowed_models": null' in shown
    assert cli("keys", "update", key_id, "--expires", "never").stdout.split()[3] == "active"
    assert cli("keys", "delete", key_id).stdout.split()[3] == "deleted"
    assert cli("keys", "list").stdout == ""
    assert cli("keys", "list", "--all").stdout.startswith(key_id)
    assert "was deleted" in cli("keys", "enable", key_id, code=1).stderr


async def test_tasks_and_usage(cli: Cli) -> None:
    a, _ = await asyncio.to_thread(cli.new_key, "--balance", "5", "--name", "a")
    engine = create_engine(make_settings(cli.data_dir.parent).resolved_database_url)
    try:
        task_ids = [await add_task(engine, a, model="sora-2-hd-15s-chat", at=DAY1) for _ in range(2)]
        async with engine.connect() as conn:
            assert await verify_ledger(conn) == []
    finally:
        await engine.dispose()
    tasks = (await asyncio.to_thread(cli, "keys", "tasks", a)).stdout.splitlines()
    assert [line.split()[0] for line in tasks] == task_ids[::-1]
    assert all(line.split()[3:6] == ["completed", "1", "sora-2-hd-15s-chat"] for line in tasks)
    by_day = (await asyncio.to_thread(cli, "usage", "--by", "day")).stdout.splitlines()
    assert by_day[0].split() == ["day", "tasks", "done", "failed", "charged", "refunded", "background"]
    assert by_day[1].split() == ["2026-11-01", "2", "2", "0", "2", "0", "0"]
    by_key = (await asyncio.to_thread(cli, "usage")).stdout.splitlines()
    assert by_key[1].split() == [a, "2", "2", "0", "2", "0", "0"]
    assert (await asyncio.to_thread(cli, "usage", "--since", "2026-11-02")).stdout.splitlines()[1:] == []


async def test_against_a_running_server(cli: Cli, tmp_path: Path) -> None:
    backends: dict[str, Any] = {"procedural": GatedBackend(FailingBackend(), name="procedural")}
    settings = make_settings(tmp_path, admin_token=TOKEN)  # the same data dir as `cli`
    async with live_server(settings, backends) as server:

        def run(*args: str, code: int = 0) -> Result:
            return cli(*args, "--server", server.url, "--admin-token", TOKEN, code=code)

        created = await asyncio.to_thread(run, "keys", "create", "--balance", "3", "--name", "remote")
        key_id = KEY_ID.search(created.stderr).group()  # type: ignore[union-attr]
        assert (await asyncio.to_thread(run, "keys", "topup", key_id, "2", "--reason", "r")).stdout.startswith(
            "credit 2: balance 5"
        )
        refused = await asyncio.to_thread(run, "keys", "topup", key_id, "-9", "--reason", "r", code=1)
        assert "below zero" in refused.stderr
        remote = (await asyncio.to_thread(run, "keys", "ledger", key_id)).stdout
        local = (await asyncio.to_thread(cli, "keys", "ledger", key_id)).stdout
        assert remote == local and len(remote.splitlines()) == 2
        for args in (("keys", "list"), ("usage", "--by", "key"), ("keys", "tasks", key_id)):
            assert (await asyncio.to_thread(run, *args)).stdout == (await asyncio.to_thread(cli, *args)).stdout

        env_token = await asyncio.to_thread(
            cli, "keys", "show", key_id, "--server", server.url, REELGATE_ADMIN_TOKEN=TOKEN
        )
        assert f'"id": "{key_id}"' in env_token.stdout
        no_token = await asyncio.to_thread(cli, "keys", "list", "--server", server.url, code=1)
        assert "admin token" in no_token.stderr
        wrong = await asyncio.to_thread(
            cli, "keys", "list", "--server", server.url, "--admin-token", "wrong-token-0123456789", code=1
        )
        assert "Incorrect admin token" in wrong.stderr
    gone = await asyncio.to_thread(cli, "keys", "list", "--server", server.url, "--admin-token", TOKEN, code=1)
    assert "Cannot reach the server" in gone.stderr
    await asyncio.to_thread(cli.verify)
