"""API-key authentication: `Authorization: Bearer sk-...` or the provider's bare `Authorization: sk-...`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelgate.api.deps import runtime
from reelgate.api.middleware import RATE_STATE
from reelgate.billing.keys import ApiKey, authenticate, digest, required, verified
from reelgate.billing.limits import rate_state
from reelgate.errors import ModelNotFound
from reelgate.observability.logging import bind

if TYPE_CHECKING:
    from reelgate.runtime import Runtime

#: Declares the API key in OpenAPI; `current_key` reads the header itself, to take the bare form too.
API_KEY = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer sk-...` (the bare `Authorization: sk-...` works too).",
    auto_error=False,
)
Scheme = Annotated[HTTPAuthorizationCredentials | None, Depends(API_KEY)]


def bearer_secret(header: str | None) -> str | None:
    """The key in an Authorization header value, with or without the `Bearer` scheme."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    return header.strip()


async def current_key(request: Request, _scheme: Scheme = None) -> ApiKey:
    """The request's key; its rate-limit state is left for the `x-ratelimit-*` headers.

    A dependency of most routes; the chat route, the one crowds hit, calls it itself (`contract(...,
    keyed=True)` declares its key), which spares it FastAPI's solving of two nested dependencies.

    The key's row is read with those of the requests that arrive at the same time, in one query, and
    serves the next requests for a moment (`Runtime.key_rows`); its balance may be as old: admission
    reads the balance, and the key's state, afresh under the key's lock.
    """
    secret = required(bearer_secret(request.headers.get("authorization")))
    rt = runtime(request)
    return await _with_rate_state(request, rt, verified(secret, await rt.key_rows.get(digest(secret))))


async def fresh_key(request: Request, _scheme: Scheme) -> ApiKey:
    """`current_key` read from the database now, for the answers that show the key's balance."""
    secret = bearer_secret(request.headers.get("authorization"))
    rt = runtime(request)
    async with rt.engine.connect() as conn:
        key = await authenticate(conn, secret)
    return await _with_rate_state(request, rt, key)


async def _with_rate_state(request: Request, rt: Runtime, key: ApiKey) -> ApiKey:
    bind(key_id=key.id)
    limits = rt.tasks.policy.limits.for_key(key)
    if limits.rpm:  # without a per-minute limit there are no headers to send, so nothing to count
        async with rt.engine.connect() as conn:
            setattr(request.state, RATE_STATE, await rate_state(conn, key.id, limits, datetime.now(UTC)))
    return key


def check_model_access(key: ApiKey, model: str) -> None:
    """A key limited to some models sees the others as missing, as OpenAI answers: 404 model_not_found."""
    if key.allowed_models is not None and model not in key.allowed_models:
        raise ModelNotFound(model, key.allowed_models)
