"""One exception tree for reelgate. Each HTTP-facing class knows its status and OpenAI error shape.

    ReelgateError                      500 server_error
    ├── InvalidRequest                 400 invalid_request_error
    │   └── RequestTooLarge            413 invalid_request_error / request_too_large
    ├── AuthenticationError            401 invalid_request_error / invalid_api_key
    ├── NotFound                       404 invalid_request_error / not_found
    │   └── ModelNotFound              404 invalid_request_error / model_not_found
    ├── PermissionDenied               403 invalid_request_error / permission_denied
    ├── Conflict                       409 invalid_request_error / conflict
    ├── Gone                           410 invalid_request_error / expired
    ├── InsufficientQuota              429 insufficient_quota / insufficient_quota
    ├── RateLimited                    429 requests / rate_limit_exceeded (Retry-After)
    ├── ServiceUnavailable             503 server_error / service_unavailable (Retry-After)
    ├── ServerFault                    a task failure the server caused (refunded whatever the
    │   │                              charge-on-failure policy says): `internal_error`
    │   ├── StorageError               `storage_error`: a file could not be written (503 in a request)
    │   │   └── StorageFull            `storage_full`: the disk is full
    │   └── WorkerLost                 `worker_lost`: its worker died on every attempt
    └── GenerationError                a task failure, never an HTTP response of its own;
                                       its code and message become the task's `error`

A task's failure is the server's fault exactly when its code is one of `ServerFault`'s (see
`is_server_fault`): one place decides what a caller is never charged for.

Adapters translate foreign exceptions into these once, at their edge (`raise ... from exc`).
One handler in `api/errors.py` renders them; a mid-stream failure uses the same JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class ReelgateError(Exception):
    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    default_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code if code is not None else self.default_code

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI error envelope: `{"error": {"message", "type", "param", "code"}}`."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(ReelgateError):
    status_code = 400
    error_type = "invalid_request_error"


class RequestTooLarge(InvalidRequest):
    status_code = 413
    default_code = "request_too_large"


class AuthenticationError(ReelgateError):
    status_code = 401
    error_type = "invalid_request_error"
    default_code = "invalid_api_key"


class NotFound(ReelgateError):
    status_code = 404
    error_type = "invalid_request_error"
    default_code = "not_found"


class ModelNotFound(NotFound):
    default_code = "model_not_found"

    def __init__(self, model: str, available: Sequence[str] | None = None) -> None:
        choices = f" Available models: {', '.join(available)}." if available else ""
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.{choices}",
            param="model",
        )


class PermissionDenied(ReelgateError):
    status_code = 403
    error_type = "invalid_request_error"
    default_code = "permission_denied"


class Conflict(ReelgateError):
    status_code = 409
    error_type = "invalid_request_error"
    default_code = "conflict"


class Gone(ReelgateError):
    """Something that existed and was deleted for good, such as a video's files after retention."""

    status_code = 410
    error_type = "invalid_request_error"
    default_code = "expired"


class RateLimited(ReelgateError):
    status_code = 429
    error_type = "requests"
    default_code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class InsufficientQuota(ReelgateError):
    status_code = 429
    error_type = "insufficient_quota"
    default_code = "insufficient_quota"


class ServiceUnavailable(ReelgateError):
    status_code = 503
    default_code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class GenerationError(ReelgateError):
    """A backend could not make the video. The task fails with this code and message."""

    default_code = "generation_failed"


class ServerFault(ReelgateError):
    """The server failed a task through no fault of the caller's: never charged (see `is_server_fault`)."""

    default_code = "internal_error"


class StorageError(ServerFault):
    """A file could not be written. Raised while a request is admitted, it is a 503: try again later."""

    status_code = 503
    default_code = "storage_error"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "60"}


class StorageFull(StorageError):
    default_code = "storage_full"


class WorkerLost(ServerFault):
    default_code = "worker_lost"


def _codes(cls: type[ReelgateError]) -> frozenset[str]:
    own = {cls.default_code} if cls.default_code else set()
    return frozenset(own.union(*(_codes(sub) for sub in cls.__subclasses__())))


def is_server_fault(code: str | None) -> bool:
    """Whether a task failed with `code` by the server's own fault: `is_server_fault("storage_full")` is
    True, `is_server_fault("generation_failed")` (a refused prompt, an upstream failure) is False."""
    return code in _codes(ServerFault)
