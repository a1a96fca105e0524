"""How each kind of upstream proves who we are: one place turns the configured secret into headers.

openai-videos, chat-relay    Authorization: Bearer KEY
veo                          x-goog-api-key: KEY
fal                          Authorization: Key KEY
kling                        Authorization: Bearer JWT, signed (HS256) with the key pair's secret;
                             the secret holds both halves as ACCESS_KEY:SECRET_KEY
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

#: How long one Kling token is valid; a fresh one is made for every request.
TOKEN_SECONDS = 1800


def headers_for(kind: str, secret: str) -> dict[str, str]:
    if kind == "veo":
        return {"x-goog-api-key": secret}
    if kind == "fal":
        return {"Authorization": f"Key {secret}"}
    if kind == "kling":
        access, _, signing = secret.partition(":")
        return {"Authorization": f"Bearer {jwt(access, signing)}"}
    return {"Authorization": f"Bearer {secret}"}


def check_secret(kind: str, secret: str) -> None:
    """ValueError (without the secret) when it cannot be used by `kind`."""
    if kind == "kling" and not all(secret.partition(":")[::2]):
        raise ValueError("a kling key must be ACCESS_KEY:SECRET_KEY")


def jwt(issuer: str, secret: str, now: float | None = None) -> str:
    """An HS256 JSON Web Token as Kling asks for: `iss` the access key, valid from 5 s ago for 30 min."""
    moment = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": issuer, "exp": moment + TOKEN_SECONDS, "nbf": moment - 5}
    signed = f"{_part(header)}.{_part(claims)}"
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(signature)}"


def _part(value: Mapping[str, object]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
