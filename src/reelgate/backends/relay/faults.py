"""What went wrong talking to an upstream. httpx's errors become `UpstreamError` here, once.

`UpstreamError` never reaches a user by itself: retries and failover look at `retryable` and
`unhealthy`, and the backend finally turns what is left into a `GenerationError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

#: Statuses worth asking again: timeouts, rate limits, and the server's own failures.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Client errors that still say the upstream is unusable for us (bad key, no balance, banned).
ACCOUNT_STATUSES = frozenset({401, 402, 403})

MESSAGE_LIMIT = 500


class UpstreamError(Exception):
    """One exchange with an upstream failed.

    `retryable`: asking again may work (connection errors, 429, 5xx, malformed answers).
    `unhealthy`: it counts against the upstream's circuit breaker (a 400 about one prompt does not).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        unhealthy: bool = True,
        status: int | None = None,
        retry_after: float | None = None,
        body: str = "",
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.unhealthy = unhealthy
        self.status = status
        self.retry_after = retry_after
        #: The error answer's body, for a protocol to read its provider's error codes from.
        self.body = body
        #: reelgate's code for the task when this refusal ends it (`content_policy_violation`).
        self.code = code


def from_transport(exc: httpx.RequestError) -> UpstreamError:
    """A request that got no complete answer: refused, timed out, or dropped mid-way."""
    detail = str(exc) or type(exc).__name__
    return UpstreamError(f"no answer from the upstream ({type(exc).__name__}: {detail})", retryable=True)


def from_response(response: httpx.Response) -> UpstreamError:
    """An HTTP error answer (its body must have been read), with the upstream's own message."""
    status = response.status_code
    message = f"HTTP {status}: {error_message(response.text) or response.reason_phrase}"
    return UpstreamError(
        message,
        retryable=status in RETRYABLE_STATUSES,
        unhealthy=status in RETRYABLE_STATUSES or status in ACCOUNT_STATUSES,
        status=status,
        retry_after=retry_after(response.headers.get("retry-after")),
        body=response.text,
    )


def moderated(error: UpstreamError, flagged: Callable[[object], bool]) -> UpstreamError:
    """`error` marked `content_policy_violation` (final) when the code in its body (`code`, or
    `error.code`) is one the provider's safety system gives (`flagged`); otherwise as it was."""
    try:
        body = json.loads(error.body) if error.body else None
    except ValueError:
        body = None
    nested = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    if code is None and isinstance(nested, dict):
        code = nested.get("code")
    if code is not None and flagged(code):
        error.code = "content_policy_violation"
        error.retryable = error.unhealthy = False
    return error


def malformed(what: str) -> UpstreamError:
    return UpstreamError(f"the upstream's answer is not valid JSON ({what})", retryable=True)


def error_message(text: str) -> str:
    """The message in an error body (`{"error": {"message": ...}}`, `{"message": ...}`, or the text itself)."""
    try:
        body = json.loads(text)
    except ValueError:
        return clip(" ".join(text.split()))
    return clip(message_of(body) or " ".join(text.split()))


def message_of(value: Any) -> str:
    """The human part of an error value, whatever its shape."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("error", "message", "detail", "fail_reason", "msg"):
            found = message_of(value.get(key))
            if found:
                return found
    return ""


def retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: `"3"` -> 3.0; an HTTP date -> the seconds until then."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


_CODE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")


def safe_code(value: object, default: str) -> str:
    """An upstream's error code if it looks like one (`content_policy_violation`), else `default`."""
    return value if isinstance(value, str) and _CODE.match(value) else default


def clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
