"""The error envelope: every 4xx and 5xx answer is ``{"error": {"code", "message", "details"}}``.

- ``GMVError`` (and its subclasses) renders with its own status, code and headers.
- ``HTTPException`` (unknown route, wrong method) renders with a code derived from its status.
- Request validation renders as 422 ``VALIDATION_FAILED`` with the field errors in ``details``.
- A database that cannot be reached renders as 503 ``DATABASE_UNAVAILABLE``.
- Anything else renders as 500 ``INTERNAL_ERROR``; the exception is logged, never echoed.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from gmv_common.errors import GMVError
from gmv_common.logging import get_logger

log = get_logger(__name__)


class FastJSONResponse(JSONResponse):
    """JSON rendered with orjson (datetimes, decimals as strings)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


HTTP_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    410: "GONE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


class ErrorBody(BaseModel):
    code: str = Field(examples=["NOT_FOUND"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    """What every 4xx and 5xx answer of the API carries."""

    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the statuses it may answer with the error envelope."""
    return {status: {"model": ErrorResponse} for status in statuses}


def error_json(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> FastJSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return FastJSONResponse(body, status_code=status_code, headers=headers)


def is_database_outage(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, ConnectionError | TimeoutError)


def render_unexpected(exc: BaseException) -> FastJSONResponse:
    """The answer for an exception no handler claimed (used by the request middleware)."""
    if is_database_outage(exc):
        log.error("http.database_unavailable", error_type=type(exc).__name__)
        return error_json(
            503,
            "DATABASE_UNAVAILABLE",
            "The database cannot be reached; try again shortly.",
            headers={"Retry-After": "5"},
        )
    log.error("http.unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return error_json(500, "INTERNAL_ERROR", "An unexpected error occurred.")


async def _gmv_error(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, GMVError)
    if exc.status_code >= 500:
        log.warning("http.error", code=exc.code, status=exc.status_code)
    return error_json(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_STATUS_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(exc.headers) if exc.headers else None
    return error_json(exc.status_code, code, message, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> FastJSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(error.get("loc", ())),
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    return error_json(
        422,
        "VALIDATION_FAILED",
        "The request is not valid.",
        {"errors": jsonable_encoder(errors)},
    )


async def _database_error(_: Request, exc: Exception) -> FastJSONResponse:
    return render_unexpected(exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GMVError, _gmv_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for outage in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(outage, _database_error)
