"""The `replicate` relay (any video model on Replicate) over its real path, scenario by scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.relay.conftest import relay_settings, relayed, upstream

MODEL = "replicated-video"


def replicate_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "replicate:replicate",
        model="kwaivgi/kling-v2.1",
        seconds={4: 5},
        parameters={
            "prompt": "{prompt}",
            "duration": "{seconds}",
            "aspect_ratio": "{ratio}",
            "start_image": "{image}",
            "mode": "standard",
        },
    )
    return relay_settings(tmp_path, {"replicate": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})
