"""The `dashscope` relay (Wan on Model Studio) over its real path, scenario by scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.relay.conftest import relay_settings, relayed, upstream

MODEL = "wan-video"
#: Wan makes videos from an image with its image-to-video models only.
IMAGE_MODEL = "wan-image-video"


def wan_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("dashscope:wan", model="wan2.5-t2v-preview", seconds={4: 5}, parameters={"audio": True})
    image_entry = relayed("dashscope:wan", model="wan2.5-i2v-preview", seconds={4: 5}, parameters={"audio": True})
    models = {MODEL: entry, IMAGE_MODEL: image_entry}
    return relay_settings(tmp_path, {"wan": upstream(url, base_url=url, **upstream_extra)}, models)
