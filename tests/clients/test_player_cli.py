"""`reelgate keys create|update --player on|off|default`: the per-key player block from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli_admin import Cli


def test_the_player_switch_per_key(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "data")
    key_id, _ = cli.new_key("--balance", "1", "--player", "on")
    assert json.loads(cli("keys", "show", key_id).stdout)["player_block"] is True
    cli("keys", "update", key_id, "--player", "off")
    assert json.loads(cli("keys", "show", key_id).stdout)["player_block"] is False
    cli("keys", "update", key_id, "--player", "default")
    assert json.loads(cli("keys", "show", key_id).stdout)["player_block"] is None
    assert "player" in cli("keys", "update", key_id, "--player", "maybe", code=2).output
