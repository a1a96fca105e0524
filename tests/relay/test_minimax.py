"""The `minimax` relay (Hailuo) over its real path, scenario by scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.relay.conftest import relay_settings, relayed, upstream

MODEL = "hailuo-video"


def hailuo_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "minimax:minimax", model="MiniMax-Hailuo-02", seconds={4: 6}, parameters={"prompt_optimizer": False}
    )
    return relay_settings(tmp_path, {"minimax": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})
