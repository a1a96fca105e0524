"""The `ark` relay (Seedance on Volcengine Ark) over its real path, scenario by scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reelgate.backends.relay.ark import flagged
from reelgate.backends.relay.faults import UpstreamError, moderated
from tests.relay.conftest import relay_settings, relayed, upstream

MODEL = "seedance-video"
SEEDANCE = "doubao-seedance-1-0-pro-250528"


def ark_settings(tmp_path: Path, url: str, **upstream_extra: Any) -> Any:
    entry = relayed("ark:ark", model=SEEDANCE, seconds={4: 5}, parameters={"watermark": "false"})
    return relay_settings(tmp_path, {"ark": upstream(url, base_url=url, **upstream_extra)}, {MODEL: entry})


def test_a_create_refused_for_sensitive_input_is_final_and_a_content_policy_violation() -> None:
    body = '{"error": {"code": "InputTextSensitiveContentDetected", "message": "sensitive"}}'
    refused = moderated(UpstreamError("HTTP 400: sensitive", retryable=False, body=body), flagged)
    assert (refused.code, refused.retryable, refused.unhealthy) == ("content_policy_violation", False, False)
    other = moderated(UpstreamError("HTTP 429", retryable=True, body='{"error": {"code": "RateLimit"}}'), flagged)
    assert (other.code, other.retryable) == (None, True)
