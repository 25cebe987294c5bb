"""Errors of the sandbox.

Two families, because the sandbox has two faces::

    TikTokError          a business error on the TikTok surface: HTTP 200, envelope
                         with a non-zero ``code`` (see ``TikTokCode``)
    SandboxAdminError    a failed admin call (``/_sandbox/...`` or a state method)
    ├── UnknownObject    the id names nothing in the world (HTTP 404)
    └── InvalidChange    the change cannot be applied as asked (HTTP 400)
"""

from __future__ import annotations

from enum import IntEnum


class TikTokCode(IntEnum):
    """Envelope codes the sandbox returns, with TikTok's numbers."""

    OK = 0
    NO_PERMISSION = 40001
    PARAM_ERROR = 40002
    ID_LIMIT_EXCEEDED = 40011
    REQUEST_TOO_FREQUENT = 40016
    APP_RATE_LIMITED = 40100
    INVALID_AUTH_PARAMS = 40101
    ACCESS_TOKEN_EMPTY = 40104
    ACCESS_TOKEN_INVALID = 40105
    AUTH_CODE_INVALID = 40110
    ADVERTISER_RATE_LIMITED = 40133
    SYSTEM_ERROR = 50000
    SYS_TIMEOUT = 50002


DEFAULT_MESSAGES: dict[int, str] = {
    TikTokCode.OK: "OK",
    TikTokCode.NO_PERMISSION: "No permission to operate the object.",
    TikTokCode.PARAM_ERROR: "Invalid parameter.",
    TikTokCode.ID_LIMIT_EXCEEDED: "Too many IDs provided.",
    TikTokCode.REQUEST_TOO_FREQUENT: "Request too frequent.",
    TikTokCode.APP_RATE_LIMITED: (
        "Due to too many requests, requests from App {app_id} are temporarily "
        "restricted."
    ),
    TikTokCode.INVALID_AUTH_PARAMS: "Invalid app_id or secret.",
    TikTokCode.ACCESS_TOKEN_EMPTY: (
        "Access token is null, you should set it in http header with key Access-Token."
    ),
    TikTokCode.ACCESS_TOKEN_INVALID: "Access token is incorrect or has been revoked.",
    TikTokCode.AUTH_CODE_INVALID: "Auth code is invalid, used or expired.",
    TikTokCode.ADVERTISER_RATE_LIMITED: "Advertiser QPS limit reached for this path.",
    TikTokCode.SYSTEM_ERROR: "System error, please try again later.",
    TikTokCode.SYS_TIMEOUT: "Error processing the request, please try again later.",
}


def default_message(code: int) -> str:
    """The message the sandbox sends with ``code`` when nothing more precise fits."""
    return DEFAULT_MESSAGES.get(code, f"Error {code}.")


class TikTokError(Exception):
    """A business error answered as HTTP 200 with ``code`` in the envelope."""

    def __init__(self, code: int, message: str | None = None) -> None:
        self.code = int(code)
        self.message = message or default_message(code)
        super().__init__(f"{self.code}: {self.message}")


def param_error(message: str) -> TikTokError:
    """A 40002 with a message naming the offending parameter."""
    return TikTokError(TikTokCode.PARAM_ERROR, message)


def no_permission(message: str) -> TikTokError:
    """A 40001 for an object the token may not see."""
    return TikTokError(TikTokCode.NO_PERMISSION, message)


class SandboxAdminError(Exception):
    """Base of admin errors. ``code`` is a stable string, ``status`` an HTTP status."""

    code = "sandbox_error"
    status = 400

    def __init__(self, message: str, **details: object) -> None:
        self.message = message
        self.details = details
        super().__init__(message)


class UnknownObject(SandboxAdminError):
    """The id names no business center, advertiser, store, product, app or token."""

    code = "unknown_object"
    status = 404


class InvalidChange(SandboxAdminError):
    """The requested change is not valid for the current world."""

    code = "invalid_change"
    status = 400
