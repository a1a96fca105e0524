"""The CLI says which database it uses and what to do: data folder, headers, a key without credits, a busy port."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelgate.backends.procedural.captions import FontFinder, warn_without_cjk_font
from reelgate.cli import app
from reelgate.settings import Settings


def test_the_default_data_folder_is_per_user_not_per_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = Settings().data_dir
    assert here == tmp_path / "user-data" / "reelgate"  # XDG_DATA_HOME, set for every test by conftest
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == here
    assert Settings(data_dir=tmp_path / "mine").database_label == str((tmp_path / "mine" / "reelgate.db").resolve())


def test_keys_from_two_directories_land_in_one_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        created = runner.invoke(app, ["keys", "create", "--balance", "1", "--name", folder])
        assert created.exit_code == 0, created.stderr
        assert f"(database: {tmp_path / 'user-data' / 'reelgate' / 'reelgate.db'})" in created.stderr
    listed = runner.invoke(app, ["keys", "list"])
    assert [line.split()[-1] for line in listed.stdout.splitlines()] == ["a", "b"]
    assert listed.stderr.split()[:5] == ["id", "hint", "balance", "state", "name"]


def test_help_and_errors_name_the_database(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["keys", "list", "--help"], env={"COLUMNS": "200"})
    text = " ".join(shown.stdout.replace("│", " ").split())
    assert "holding the database (reelgate.db)" in text and "Default: $REELGATE_DATA_DIR, else /" in text
    missing = runner.invoke(app, ["keys", "show", "key_nope", "--data-dir", str(tmp_path / "d")])
    assert missing.exit_code == 1
    assert f"(database: {tmp_path / 'd' / 'reelgate.db'})" in missing.stderr


def test_a_key_without_balance_is_made_with_a_warning(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "create", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0 and result.stdout.startswith("sk-")
    assert "warning: the key has no credits" in result.stderr and "reelgate keys topup key_" in result.stderr
    funded = CliRunner().invoke(app, ["keys", "create", "--balance", "2", "--data-dir", str(tmp_path / "d")])
    assert "warning" not in funded.stderr


def test_tasks_and_ledger_have_headers(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path / "d")]
    key_id = runner.invoke(app, ["keys", "create", "--balance", "2", *data]).stderr.split()[1]
    ledger = runner.invoke(app, ["keys", "ledger", key_id, *data])
    assert ledger.stderr.split()[:4] == ["entry", "time", "(UTC)", "kind"]
    assert len(ledger.stdout.splitlines()) == 1
    tasks = runner.invoke(app, ["keys", "tasks", key_id, *data])
    assert tasks.exit_code == 0 and tasks.stdout == "" and tasks.stderr == ""  # no tasks: no header either


def test_serve_on_a_busy_port_says_so_before_touching_the_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "reelgate", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and f"--port {port + 1}" in result.stderr
    assert "startup complete" not in result.stderr
    assert not (tmp_path / "d" / "reelgate.db").exists()


def test_missing_cjk_font_is_warned_with_the_fix(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert warn_without_cjk_font(FontFinder(search_system=False)) is True
    assert "Chinese captions will be left out" in caplog.text and "pip install mplfonts" in caplog.text
    caplog.clear()
    assert warn_without_cjk_font(FontFinder()) is False  # mplfonts is in the test extra
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("command", "variable", "value", "says"),
    [
        (["serve"], "REELGATE_SERVER_PROCESSES", "0", "greater than or equal to 1"),
        (["keys", "list"], "REELGATE_WORKER_SLOTS", "many", "valid integer"),
        (["migrate"], "REELGATE_PORT", "99999", "less than or equal to 65535"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(
    tmp_path: Path, command: list[str], variable: str, value: str, says: str
) -> None:
    env = {"REELGATE_DATA_DIR": str(tmp_path / "d"), variable: value}
    result = CliRunner().invoke(app, command, env=env)
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {variable}={value!r}: ") and says in line
    assert not (tmp_path / "d").exists()  # nothing was started or migrated
