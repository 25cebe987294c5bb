"""The one error family of GMV Backend.

    GMVError                      code, http status, message, details, retriable
    ├── NotFoundError             404  (also used for another workspace's objects)
    ├── ConflictError             409
    ├── ValidationFailedError     422 / 400
    ├── RateLimitedError          429  (carries retry_after)
    ├── AuthError                 401 / 403
    └── UnavailableError          503  (a dependency is down; retriable)

A subclass fixes the HTTP status; the ``code`` string is the stable, documented identifier clients
switch on. The gateway renders every one of them as ``{"error": {"code", "message", "details"}}``.
Workers read ``retriable`` to decide between retrying a message and failing the run.
"""

from __future__ import annotations

from typing import Any, ClassVar


class GMVError(Exception):
    status_code: int = 500
    default_code: ClassVar[str] = "INTERNAL_ERROR"
    retriable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
        retriable: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or {}
        self.headers = headers or {}
        if status_code is not None:
            self.status_code = status_code
        if retriable is not None:
            self.retriable = retriable

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class NotFoundError(GMVError):
    status_code = 404
    default_code = "NOT_FOUND"


class ConflictError(GMVError):
    status_code = 409
    default_code = "CONFLICT"


class ValidationFailedError(GMVError):
    status_code = 400
    default_code = "VALIDATION_FAILED"


class RateLimitedError(GMVError):
    status_code = 429
    default_code = "RATE_LIMITED"
    retriable = True

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        headers = {"Retry-After": str(max(1, retry_after))}
        super().__init__(message, headers=headers, **kwargs)
        self.retry_after = retry_after
        self.details.setdefault("retry_after_seconds", retry_after)


class AuthError(GMVError):
    status_code = 401
    default_code = "UNAUTHENTICATED"


class ForbiddenError(GMVError):
    status_code = 403
    default_code = "FORBIDDEN"


class UnavailableError(GMVError):
    status_code = 503
    default_code = "SERVICE_UNAVAILABLE"
    retriable = True
