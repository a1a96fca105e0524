"""The `fal` relay (any video model on fal's queue) over its real path; the shared scenarios are in
test_task_scenarios.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reelgate.backends.relay.fal import QUEUE_BASE, storage
from reelgate.backends.relay.upstream import UpstreamHub
from tests.relay.conftest import KEY_ENV, relay_settings, relayed, upstream
from tests.relay.fakes import KEY

MODEL = "fal-video"
KLING_ON_FAL = "fal-ai/kling-video/v2.1/standard/text-to-video"
#: The same model's image-to-video app, whose input takes the image.
IMAGE_MODEL = "fal-image-video"
KLING_I2V_ON_FAL = "fal-ai/kling-video/v2.1/standard/image-to-video"


def fal_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed(
        "fal:fal",
        model=KLING_ON_FAL,
        seconds={4: 5},
        parameters={"prompt": "{prompt}", "duration": "{seconds}", "aspect_ratio": "{ratio}", "cfg_scale": 0.5},
    )
    image_entry = relayed(
        "fal:fal",
        model=KLING_I2V_ON_FAL,
        seconds={4: 5},
        parameters={"prompt": "{prompt}", "duration": "{seconds}", "image_url": "{image}"},
    )
    models = {MODEL: entry, IMAGE_MODEL: image_entry}
    return relay_settings(tmp_path, {"fal": upstream(url, base_url=url, **upstream_extra)}, models)


def test_beside_fals_queue_an_upload_starts_at_its_rest_host_with_the_key() -> None:
    hub = UpstreamHub(
        {
            "fal": {"base_url": QUEUE_BASE, "api_key_env": KEY_ENV},
            "proxy": {"base_url": "https://p.example/fal", "api_key_env": KEY_ENV},
        }
    )
    url, headers = storage(hub.get("fal", "fal"))
    assert url == "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3"
    assert headers == {"Authorization": f"Key {KEY}"}  # fal's own host, not the queue's origin: given explicitly
    url, headers = storage(hub.get("proxy", "fal"))
    assert url == "https://p.example/fal/storage/upload/initiate?storage_type=fal-cdn-v3"
    assert headers == {}  # the proxy's own origin: the exchange adds the key itself
