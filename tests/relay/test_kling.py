"""The `kling` relay over its real path (catalog -> API -> worker -> Kling API fake -> /cdn/), scenario by scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelgate.backends.registry import make_backend
from reelgate.catalog import ModelEntry
from tests.relay.conftest import relay_settings, relayed, upstream
from tests.relay.kling_fake import ACCESS, SECRET

MODEL = "kling-video"
KLING = "kling-v2-1"
KEYS_ENV = "RELAY_TEST_KLING_KEYS"


@pytest.fixture(autouse=True)
def _key_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEYS_ENV, f"{ACCESS}:{SECRET}")


def kling_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("kling:kling", model=KLING, seconds={4: 5}, parameters={"mode": "pro"})
    kling = upstream(url, base_url=url, api_key_env=KEYS_ENV, **upstream_extra)
    return relay_settings(tmp_path, {"kling": kling}, {MODEL: entry})


def test_a_duration_kling_cannot_make_or_a_half_key_stops_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = relay_settings(tmp_path, {"kling": upstream("http://127.0.0.1:9", api_key_env=KEYS_ENV)}, {})
    with pytest.raises(ValueError, match=r"model 'six': 6 s .* kling makes 5, 10 s"):
        make_backend("kling:kling", settings, [ModelEntry("six", "kling:kling", 6, {}, 8, 0)])
    monkeypatch.setenv(KEYS_ENV, "only-an-access-key")
    settings = relay_settings(tmp_path, {"kling": upstream("http://127.0.0.1:9", api_key_env=KEYS_ENV)}, {})
    with pytest.raises(ValueError, match="ACCESS_KEY:SECRET_KEY") as refused:
        make_backend("kling:kling", settings, [ModelEntry("five", "kling:kling", 5, {}, 8, 0)])
    assert "only-an-access-key" not in str(refused.value)
