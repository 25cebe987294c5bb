"""Errors raised by the TikTok client, one class per thing a caller does about them.

    GMVError
    └── TikTokError                    TIKTOK_ERROR            502  unknown upstream code
        ├── TikTokRateLimitedError     TIKTOK_RATE_LIMITED     503  retriable
        ├── TikTokUnavailableError     TIKTOK_UNAVAILABLE      503  retriable
        │   ├── TikTokHTTPError        TIKTOK_HTTP_ERROR       503  HTTP 5xx / non-JSON body
        │   └── TikTokTransportError   TIKTOK_UNREACHABLE      503  timeout, dropped connection
        ├── TikTokAuthError            TOKEN_INVALID           409  binding needs re-authorization
        ├── TikTokAuthCodeError        AUTH_CODE_INVALID       400  start the OAuth flow again
        ├── TikTokAppCredentialsError  TIKTOK_APP_INVALID      502  operator fixes app id / secret
        ├── TikTokPermissionError      TIKTOK_PERMISSION_DENIED 403 grant access in TikTok
        ├── TikTokNotFoundError        TIKTOK_OBJECT_NOT_FOUND 404
        ├── TikTokRequestError         TIKTOK_INVALID_REQUEST  502  our request was wrong
        ├── TikTokEndpointError        TIKTOK_ENDPOINT_NOT_FOUND 502 bad base URL or path
        └── IncompleteReadError        TIKTOK_INCOMPLETE_READ  503  retriable: pages changed
    LimiterTimeoutError                TIKTOK_BUDGET_EXHAUSTED 503  retriable (a RateLimitedError)

``code`` is the stable string callers and the SPA switch on; ``tiktok_code`` keeps TikTok's
number. ``retriable`` tells a worker whether another attempt can help; the client already
retried those with backoff before raising. Messages carry TikTok's own message and what the
user has to do, never a token or secret.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gmv_common.errors import GMVError, RateLimitedError

RATE_LIMIT_CODES = frozenset({40016, 40100, 40132, 40133, 61000})
TRANSIENT_CODES = frozenset({40202, 50000, 50002, 60001})
TRANSIENT_CODE_RANGES = (range(51000, 52000), range(52000, 53000), range(53000, 54000))
TOKEN_CODES = frozenset({40102, 40103, 40104, 40105, 40106, 40107})
AUTH_CODE_CODES = frozenset({40110})
APP_CREDENTIAL_CODES = frozenset({40101, 40113})
PERMISSION_CODES = frozenset({40001, 40003, 40118, 40119, 40125, 40130, 41000})
NOT_FOUND_CODES = frozenset({40007, 40300, 40301})
REQUEST_CODES = frozenset(
    {40000, 40002, 40006, 40008, 40009, 40011, 40014, 40050, 40051, 40700, 41001, 41002}
)
APP_THROTTLE_CODE = 40100


class TikTokError(GMVError):
    """TikTok refused or failed a call; ``tiktok_code`` is its body ``code``."""

    status_code = 502
    default_code = "TIKTOK_ERROR"
    user_action: ClassVar[str] = "Try again later; if it persists, contact support."

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        tiktok_code: int | None = None,
        request_id: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged: dict[str, Any] = {"endpoint": endpoint, "tiktok_code": tiktok_code}
        if request_id:
            merged["request_id"] = request_id
        merged.update(details or {})
        super().__init__(f"{message} {self.user_action}", details=merged)
        self.endpoint = endpoint
        self.tiktok_code = tiktok_code
        self.request_id = request_id

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, endpoint={self.endpoint!r}, "
            f"tiktok_code={self.tiktok_code!r})"
        )


class TikTokRateLimitedError(TikTokError):
    """The app, advertiser or endpoint budget is spent (40100, 40133, 40016, 61000)."""

    status_code = 503
    default_code = "TIKTOK_RATE_LIMITED"
    retriable = True
    user_action = "TikTok is throttling this app; the request will be retried."


class TikTokUnavailableError(TikTokError):
    """TikTok failed on its side (50000, 50002, 51xxx, 60001); another try may work."""

    status_code = 503
    default_code = "TIKTOK_UNAVAILABLE"
    retriable = True
    user_action = "TikTok had a temporary problem; the request will be retried."


class TikTokHTTPError(TikTokUnavailableError):
    """An HTTP 5xx, or an answer that was not TikTok's JSON envelope."""

    default_code = "TIKTOK_HTTP_ERROR"


class TikTokTransportError(TikTokUnavailableError):
    """No answer: timeout, refused or dropped connection.

    ``request_sent`` is False when the request surely never reached TikTok, which is the
    only case where a non-idempotent call (an auth code exchange) may be sent again.
    """

    default_code = "TIKTOK_UNREACHABLE"
    user_action = "TikTok could not be reached; the request will be retried."

    def __init__(
        self, message: str, *, endpoint: str, request_sent: bool, cause: str
    ) -> None:
        super().__init__(message, endpoint=endpoint, details={"cause": cause})
        self.request_sent = request_sent


class TikTokAuthError(TikTokError):
    """The binding's access token is expired, revoked or not the advertiser's (40102-40106).

    Sync workers catch this class to mark the binding ``needs_reauth``.
    """

    status_code = 409
    default_code = "TOKEN_INVALID"
    user_action = (
        "Reconnect the TikTok account: the authorization was revoked or expired."
    )


class TikTokAuthCodeError(TikTokError):
    """The OAuth ``auth_code`` is invalid, expired (1 hour) or already used (40110)."""

    status_code = 400
    default_code = "AUTH_CODE_INVALID"
    user_action = "Start the TikTok authorization again; the code is single-use."


class TikTokAppCredentialsError(TikTokError):
    """TikTok rejected the developer app id or secret, or blocked the app (40101, 40113)."""

    default_code = "TIKTOK_APP_INVALID"
    user_action = "An operator must check the TikTok app id and secret of this app."


class TikTokPermissionError(TikTokError):
    """The token may not read this object or use this feature (40001, 40118, 40125...)."""

    status_code = 403
    default_code = "TIKTOK_PERMISSION_DENIED"
    user_action = (
        "Grant this app access to the object in TikTok Business Center, "
        "then reconnect the account if the scope changed."
    )


class TikTokNotFoundError(TikTokError):
    """The advertiser, store or object does not exist upstream (40007, 40300, 40301)."""

    status_code = 404
    default_code = "TIKTOK_OBJECT_NOT_FOUND"
    user_action = "Check the id; the object may have been deleted in TikTok."


class TikTokRequestError(TikTokError):
    """TikTok refused our parameters (40000, 40002, 40011...): a defect on our side."""

    default_code = "TIKTOK_INVALID_REQUEST"
    user_action = "This is a defect in GMV Backend; report it with the request id."


class TikTokEndpointError(TikTokError):
    """HTTP 4xx: the base URL or path is wrong (a missing trailing slash gives 404)."""

    default_code = "TIKTOK_ENDPOINT_NOT_FOUND"
    user_action = "An operator must check TIKTOK_API_BASE_URL."


class IncompleteReadError(TikTokError):
    """A paginated read returned fewer or more rows than TikTok's ``total_number``.

    Retriable: the listing changed while it was read, and a new read usually agrees.
    """

    status_code = 503
    default_code = "TIKTOK_INCOMPLETE_READ"
    retriable = True
    user_action = "The data changed while it was read; the sync will read it again."

    def __init__(self, *, endpoint: str, rows_read: int, total_number: int) -> None:
        super().__init__(
            f"TikTok {endpoint} listed {total_number} rows but {rows_read} were read.",
            endpoint=endpoint,
            details={"rows_read": rows_read, "total_number": total_number},
        )
        self.rows_read = rows_read
        self.total_number = total_number


class LimiterTimeoutError(RateLimitedError):
    """The app's request budget has no slot within the caller's wait limit."""

    status_code = 503
    default_code = "TIKTOK_BUDGET_EXHAUSTED"


def error_class_for(tiktok_code: int) -> type[TikTokError]:
    """The error class for a TikTok body ``code`` other than 0 and 20001."""
    if tiktok_code in RATE_LIMIT_CODES:
        return TikTokRateLimitedError
    if tiktok_code in TRANSIENT_CODES or any(
        tiktok_code in codes for codes in TRANSIENT_CODE_RANGES
    ):
        return TikTokUnavailableError
    if tiktok_code in TOKEN_CODES:
        return TikTokAuthError
    if tiktok_code in AUTH_CODE_CODES:
        return TikTokAuthCodeError
    if tiktok_code in APP_CREDENTIAL_CODES:
        return TikTokAppCredentialsError
    if tiktok_code in PERMISSION_CODES:
        return TikTokPermissionError
    if tiktok_code in NOT_FOUND_CODES:
        return TikTokNotFoundError
    if tiktok_code in REQUEST_CODES:
        return TikTokRequestError
    return TikTokError


__all__ = [
    "APP_THROTTLE_CODE",
    "IncompleteReadError",
    "LimiterTimeoutError",
    "TikTokAppCredentialsError",
    "TikTokAuthCodeError",
    "TikTokAuthError",
    "TikTokEndpointError",
    "TikTokError",
    "TikTokHTTPError",
    "TikTokNotFoundError",
    "TikTokPermissionError",
    "TikTokRateLimitedError",
    "TikTokRequestError",
    "TikTokTransportError",
    "TikTokUnavailableError",
    "error_class_for",
]
