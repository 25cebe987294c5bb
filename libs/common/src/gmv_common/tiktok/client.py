"""The TikTok API for Business client every service uses.

Each request first takes a slot of its app's shared budget (``RateLimiter``), then goes out
with the token in the ``Access-Token`` header and list/object query parameters as JSON
strings. TikTok answers errors with HTTP 200, so the body ``code`` decides: 0 (and 20001,
partial success) return ``data``; any other code raises the matching ``TikTokError``.
Retriable errors (rate limits, TikTok-side failures, HTTP 5xx, timeouts, dropped
connections) are retried with jittered exponential backoff, each retry logged as
``tiktok.retry``; the others are raised at once. Tokens, secrets and auth codes never reach
a log line, an exception or a repr.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import structlog
from pydantic import BaseModel, ConfigDict, SecretStr
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from gmv_common.settings import Settings, get_settings
from gmv_common.tiktok.errors import (
    APP_THROTTLE_CODE,
    TikTokEndpointError,
    TikTokError,
    TikTokHTTPError,
    TikTokRateLimitedError,
    TikTokTransportError,
    error_class_for,
)
from gmv_common.tiktok.limiter import RateLimiter
from gmv_common.tiktok.metrics import TIKTOK_CALLS, TIKTOK_THROTTLED
from gmv_common.tiktok.models import (
    AccessToken,
    AdvertiserInfo,
    AuthorizedAdvertiser,
    BusinessCenter,
    GmvMaxStore,
    Page,
    PageInfo,
    Priority,
    RevokedToken,
    Store,
    StoreProduct,
    TikTokModel,
    as_tiktok_id,
)
from gmv_common.tiktok.pagination import (
    BC_PAGE_SIZE,
    STORE_PRODUCT_PAGE_SIZE,
    ReadResult,
    batched_ids,
    read_all_pages,
)

log = structlog.get_logger(__name__)

SUCCESS_CODES = frozenset({0, 20001})
PARTIAL_SUCCESS_CODE = 20001
SENSITIVE_QUERY_KEYS = frozenset({"secret", "access_token", "auth_code", "app_secret"})
REDACTED = "[redacted]"
UPSTREAM_MESSAGE_LIMIT = 500
HTTP_LANES = 4

ModelT = TypeVar("ModelT", bound=TikTokModel)


class TikTokCredentials(BaseModel):
    """What one binding calls TikTok with. Its repr never shows the token or secret.

    ``app_id`` also names the request budget the calls are paced on. ``app_secret`` is
    needed only by ``oauth2/advertiser/get``.
    """

    model_config = ConfigDict(frozen=True)

    app_id: str
    access_token: SecretStr
    app_secret: SecretStr | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per call and the jittered exponential backoff between them."""

    max_attempts: int = 6
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 10.0
    # TikTok's advice for a QPS limit: retry after the current second.
    rate_limit_min_wait_seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            max_attempts=settings.tiktok_max_attempts,
            initial_wait_seconds=settings.tiktok_retry_initial_seconds,
            max_wait_seconds=settings.tiktok_retry_max_seconds,
        )


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    endpoint: str
    app_id: str
    priority: Priority
    headers: dict[str, str]
    params: dict[str, str] | None
    body: dict[str, Any] | None
    secrets: tuple[str, ...]
    idempotent: bool


class TikTokClient:
    """Async client of the TikTok endpoints the syncs need; one per process is enough.

    Use it as ``async with TikTokClient(limiter=...) as client:`` or call ``aclose()``.
    """

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        settings: Settings | None = None,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = settings or get_settings()
        base = base_url or settings.tiktok_api_base_url
        self.base_url = base if base.endswith("/") else base + "/"
        self.retry = retry or RetryPolicy.from_settings(settings)
        self._limiter = limiter
        # Several small connection pools, taken in turn: httpx's pool does work for every
        # pending request times every connection on each request, so one pool shared by
        # many concurrent calls spends more CPU on itself than on the calls (measured:
        # 2.1 ms a call with 8 in flight on one pool, 0.9 ms over four). A given
        # transport is one pool already: it gets one client.
        self._lanes = [
            httpx.AsyncClient(
                base_url=self.base_url,
                timeout=settings.tiktok_http_timeout_seconds,
                transport=transport,
                headers={"Accept": "application/json"},
            )
            for _ in range(HTTP_LANES if transport is None else 1)
        ]
        self._next_lane = itertools.cycle(self._lanes)
        _install_httpx_log_redaction()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()

    def __repr__(self) -> str:
        return f"TikTokClient(base_url={self.base_url!r})"

    # OAuth

    async def exchange_auth_code(
        self,
        *,
        app_id: str,
        app_secret: SecretStr,
        auth_code: SecretStr,
        return_advertiser_ids: bool = True,
        priority: Priority = Priority.INTERACTIVE,
    ) -> AccessToken:
        """``POST oauth2/access_token/``: trade a single-use auth code for a token."""
        data = await self._send(
            _Call(
                method="POST",
                endpoint="oauth2/access_token/",
                app_id=app_id,
                priority=priority,
                headers={},
                params=None,
                body={
                    "app_id": app_id,
                    "secret": app_secret.get_secret_value(),
                    "auth_code": auth_code.get_secret_value(),
                    "return_advertiser_ids": return_advertiser_ids,
                },
                secrets=_secret_values(app_secret, auth_code),
                idempotent=False,
            )
        )
        return AccessToken.model_validate(data)

    async def revoke_token(
        self,
        credentials: TikTokCredentials,
        *,
        priority: Priority = Priority.INTERACTIVE,
    ) -> RevokedToken:
        """``POST oauth2/revoke_token/``: end the binding's authorization upstream."""
        app_secret = _require_secret(credentials, "oauth2/revoke_token/")
        data = await self._send(
            _Call(
                method="POST",
                endpoint="oauth2/revoke_token/",
                app_id=credentials.app_id,
                priority=priority,
                headers={},
                params=None,
                body={
                    "app_id": credentials.app_id,
                    "secret": app_secret.get_secret_value(),
                    "access_token": credentials.access_token.get_secret_value(),
                },
                secrets=_secret_values(credentials.access_token, app_secret),
                idempotent=False,
            )
        )
        return RevokedToken.from_raw(data)

    async def get_authorized_advertisers(
        self, credentials: TikTokCredentials, *, priority: Priority
    ) -> list[AuthorizedAdvertiser]:
        """``GET oauth2/advertiser/get/``: the advertisers the token covers (unpaged)."""
        app_secret = _require_secret(credentials, "oauth2/advertiser/get/")
        data = await self._get(
            credentials,
            "oauth2/advertiser/get/",
            {"app_id": credentials.app_id, "secret": app_secret.get_secret_value()},
            priority=priority,
        )
        return _items(AuthorizedAdvertiser, data, "list")

    # Business centers and advertisers

    async def get_business_centers_page(
        self,
        credentials: TikTokCredentials,
        *,
        priority: Priority,
        page: int = 1,
        page_size: int = BC_PAGE_SIZE,
        bc_id: str | int | None = None,
    ) -> Page[BusinessCenter]:
        """``GET bc/get/``: one page of the business centers the token can see."""
        data = await self._get(
            credentials,
            "bc/get/",
            {
                "bc_id": as_tiktok_id(bc_id) if bc_id is not None else None,
                "page": page,
                "page_size": page_size,
            },
            priority=priority,
        )
        return _page(BusinessCenter, data, "list")

    async def get_all_business_centers(
        self,
        credentials: TikTokCredentials,
        *,
        priority: Priority,
        page_size: int = BC_PAGE_SIZE,
        strict: bool = True,
    ) -> ReadResult[BusinessCenter]:
        """Every business center, all pages; ``strict`` raises ``IncompleteReadError``."""

        async def fetch(page: int, size: int) -> Page[BusinessCenter]:
            return await self.get_business_centers_page(
                credentials, priority=priority, page=page, page_size=size
            )

        return await read_all_pages(
            fetch, endpoint="bc/get/", page_size=page_size, strict=strict
        )

    async def get_advertiser_info(
        self,
        credentials: TikTokCredentials,
        advertiser_ids: Iterable[str | int],
        *,
        priority: Priority,
        fields: Sequence[str] | None = None,
    ) -> list[AdvertiserInfo]:
        """``GET advertiser/info/`` for any number of ids, in batches of at most 100."""
        infos: list[AdvertiserInfo] = []
        for batch in batched_ids(advertiser_ids):
            data = await self._get(
                credentials,
                "advertiser/info/",
                {"advertiser_ids": batch, "fields": list(fields) if fields else None},
                priority=priority,
            )
            infos.extend(_items(AdvertiserInfo, data, "list"))
        return infos

    # Stores and products

    async def get_stores(
        self,
        credentials: TikTokCredentials,
        *,
        advertiser_id: str | int,
        priority: Priority,
        store_id: str | int | None = None,
    ) -> list[Store]:
        """``GET store/list/``: the TikTok Shops the advertiser can use.

        No source documents paging here; if TikTok sends ``page_info`` with more pages,
        they are read too and checked for completeness.
        """

        async def fetch(page: int, size: int) -> Page[Store]:
            paging = {} if page == 1 else {"page": page, "page_size": size}
            data = await self._get(
                credentials,
                "store/list/",
                {
                    "advertiser_id": as_tiktok_id(advertiser_id),
                    "store_id": as_tiktok_id(store_id) if store_id else None,
                    **paging,
                },
                priority=priority,
            )
            stores = _items(Store, data, "stores")
            if "page_info" not in data:
                return Page(stores, PageInfo(total_number=len(stores), total_page=1))
            return Page(stores, PageInfo.model_validate(data["page_info"]))

        first = await fetch(1, 0)
        if first.page_info.total_page <= 1:
            return first.items
        result = await read_all_pages(
            fetch,
            endpoint="store/list/",
            page_size=first.page_info.page_size,
            first_page=first,
        )
        return result.items

    async def get_store_products_page(
        self,
        credentials: TikTokCredentials,
        *,
        bc_id: str | int,
        store_id: str | int,
        priority: Priority,
        advertiser_id: str | int | None = None,
        filtering: Mapping[str, Any] | None = None,
        page: int = 1,
        page_size: int = STORE_PRODUCT_PAGE_SIZE,
    ) -> Page[StoreProduct]:
        """``GET store/product/get/``: one page of a store's products.

        ``bc_id`` is the store's ``store_authorized_bc_id``. ``filtering`` is sent as JSON,
        e.g. ``{"ad_creation_eligible": "GMV_MAX"}``.
        """
        data = await self._get(
            credentials,
            "store/product/get/",
            {
                "bc_id": as_tiktok_id(bc_id),
                "store_id": as_tiktok_id(store_id),
                "advertiser_id": as_tiktok_id(advertiser_id) if advertiser_id else None,
                "filtering": dict(filtering) if filtering else None,
                "page": page,
                "page_size": page_size,
            },
            priority=priority,
        )
        return _page(StoreProduct, data, "store_products")

    async def get_all_store_products(
        self,
        credentials: TikTokCredentials,
        *,
        bc_id: str | int,
        store_id: str | int,
        priority: Priority,
        advertiser_id: str | int | None = None,
        filtering: Mapping[str, Any] | None = None,
        page_size: int = STORE_PRODUCT_PAGE_SIZE,
        strict: bool = True,
    ) -> ReadResult[StoreProduct]:
        """Every product of the store, all pages; ``strict`` raises if incomplete."""

        async def fetch(page: int, size: int) -> Page[StoreProduct]:
            return await self.get_store_products_page(
                credentials,
                bc_id=bc_id,
                store_id=store_id,
                priority=priority,
                advertiser_id=advertiser_id,
                filtering=filtering,
                page=page,
                page_size=size,
            )

        return await read_all_pages(
            fetch, endpoint="store/product/get/", page_size=page_size, strict=strict
        )

    async def get_gmv_max_stores(
        self,
        credentials: TikTokCredentials,
        *,
        advertiser_id: str | int,
        priority: Priority,
    ) -> list[GmvMaxStore]:
        """``GET gmv_max/store/list/``: stores and their GMV Max availability (unpaged)."""
        data = await self._get(
            credentials,
            "gmv_max/store/list/",
            {"advertiser_id": as_tiktok_id(advertiser_id)},
            priority=priority,
        )
        return _items(GmvMaxStore, data, "store_list")

    # Transport

    async def _get(
        self,
        credentials: TikTokCredentials,
        endpoint: str,
        params: Mapping[str, object],
        *,
        priority: Priority,
    ) -> dict[str, Any]:
        token = credentials.access_token
        return await self._send(
            _Call(
                method="GET",
                endpoint=endpoint,
                app_id=credentials.app_id,
                priority=priority,
                headers={"Access-Token": token.get_secret_value()},
                params=encode_query(params),
                body=None,
                secrets=_secret_values(token, credentials.app_secret),
                idempotent=True,
            )
        )

    async def _send(self, call: _Call) -> dict[str, Any]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            wait=self._backoff,
            retry=retry_if_exception(
                lambda exc: _may_retry(exc, idempotent=call.idempotent)
            ),
            before_sleep=lambda state: _log_retry(call.endpoint, state),
            reraise=True,
        )
        data: dict[str, Any] = {}
        async for attempt in retrying:
            with attempt:
                data = await self._attempt(call)
        return data

    async def _attempt(self, call: _Call) -> dict[str, Any]:
        await self._limiter.acquire(call.app_id, call.priority)
        granted_at = time.monotonic()
        sent_at: list[float] = []

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event.endswith("send_request_headers.complete") and not sent_at:
                sent_at.append(time.monotonic())

        try:
            response = await next(self._next_lane).request(
                call.method,
                call.endpoint,
                params=call.params,
                json=call.body,
                headers=call.headers,
                extensions={"trace": trace},
            )
        except httpx.TransportError as exc:
            TIKTOK_CALLS.labels(endpoint=call.endpoint, code="TRANSPORT").inc()
            # Chaining would carry the request (and its secrets) into tracebacks.
            raise TikTokTransportError(
                f"TikTok {call.endpoint} did not answer ({type(exc).__name__}).",
                endpoint=call.endpoint,
                request_sent=not isinstance(exc, _NOT_SENT_ERRORS),
                cause=type(exc).__name__,
            ) from None
        finally:
            # How long after its slot the request really left (a cold connection, a TLS
            # handshake, a stalled loop): the pacer widens its spacing to absorb it.
            if sent_at:
                self._limiter.observe_send_delay(call.app_id, sent_at[0] - granted_at)
        return await self._read_envelope(call, response)

    async def _read_envelope(
        self, call: _Call, response: httpx.Response
    ) -> dict[str, Any]:
        if response.status_code != 200:
            TIKTOK_CALLS.labels(
                endpoint=call.endpoint, code=f"HTTP_{response.status_code}"
            ).inc()
            raise _http_status_error(call.endpoint, response.status_code)

        envelope = _json_object(response)
        code = envelope.get("code") if envelope else None
        if envelope is None or not isinstance(code, int):
            TIKTOK_CALLS.labels(endpoint=call.endpoint, code="MALFORMED").inc()
            raise TikTokHTTPError(
                f"TikTok {call.endpoint} answered without its JSON envelope.",
                endpoint=call.endpoint,
            )

        TIKTOK_CALLS.labels(endpoint=call.endpoint, code=str(code)).inc()
        request_id = str(envelope.get("request_id") or "") or None
        if code in SUCCESS_CODES:
            if code == PARTIAL_SUCCESS_CODE:
                log.warning(
                    "tiktok.partial_success",
                    endpoint=call.endpoint,
                    request_id=request_id,
                )
            data = envelope.get("data")
            return data if isinstance(data, dict) else {}

        if code == APP_THROTTLE_CODE:
            TIKTOK_THROTTLED.inc()
            await self._limiter.report_throttled(call.app_id)
        upstream = _redact(str(envelope.get("message") or ""), call.secrets)
        raise error_class_for(code)(
            f"TikTok {call.endpoint} answered {code}: {upstream}",
            endpoint=call.endpoint,
            tiktok_code=code,
            request_id=request_id,
        )

    def _backoff(self, state: RetryCallState) -> float:
        wait = wait_exponential_jitter(
            multiplier=self.retry.initial_wait_seconds,
            max=self.retry.max_wait_seconds,
            jitter=self.retry.initial_wait_seconds,
        )(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TikTokRateLimitedError):
            return max(wait, self.retry.rate_limit_min_wait_seconds)
        return wait


_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _may_retry(exc: BaseException, *, idempotent: bool) -> bool:
    if not isinstance(exc, TikTokError) or not exc.retriable:
        return False
    if idempotent or isinstance(exc, TikTokRateLimitedError):
        return True
    # A write that may have reached TikTok (an auth code is single-use) is not resent.
    return isinstance(exc, TikTokTransportError) and not exc.request_sent


def _log_retry(endpoint: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "tiktok.retry",
        endpoint=endpoint,
        attempt=state.attempt_number,
        code=getattr(exc, "code", type(exc).__name__),
        tiktok_code=getattr(exc, "tiktok_code", None),
        wait=round(state.next_action.sleep, 3) if state.next_action else None,
    )


def _http_status_error(endpoint: str, status: int) -> TikTokError:
    message = f"TikTok {endpoint} answered HTTP {status}."
    if status >= 500:
        return TikTokHTTPError(message, endpoint=endpoint)
    if status == 429:
        return TikTokRateLimitedError(message, endpoint=endpoint)
    return TikTokEndpointError(message, endpoint=endpoint, details={"http": status})


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _items(model: type[ModelT], data: Mapping[str, Any], key: str) -> list[ModelT]:
    return [model.from_raw(item) for item in data.get(key) or []]


def _page(model: type[ModelT], data: Mapping[str, Any], key: str) -> Page[ModelT]:
    return Page(
        items=_items(model, data, key),
        page_info=PageInfo.model_validate(data.get("page_info") or {}),
    )


def _require_secret(credentials: TikTokCredentials, endpoint: str) -> SecretStr:
    if credentials.app_secret is None:
        raise ValueError(f"{endpoint} needs the app secret in TikTokCredentials")
    return credentials.app_secret


def _secret_values(*secrets: SecretStr | None) -> tuple[str, ...]:
    return tuple(
        secret.get_secret_value()
        for secret in secrets
        if secret is not None and secret.get_secret_value()
    )


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text[:UPSTREAM_MESSAGE_LIMIT]


def encode_query(params: Mapping[str, object]) -> dict[str, str]:
    """Query parameters as TikTok reads them: lists and objects JSON-encoded, no Nones."""
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | dict):
            encoded[key] = json.dumps(value, separators=(",", ":"))
        elif isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded


def redact_url(url: object) -> str:
    """``url`` with the values of secret-bearing query parameters replaced."""
    parts = urlsplit(str(url))
    if not parts.query:
        return str(url)
    query = [
        (key, REDACTED if key.lower() in SENSITIVE_QUERY_KEYS else value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _RedactUrlFilter(logging.Filter):
    """httpx logs each request URL at INFO; ``oauth2/advertiser/get`` carries the secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(arg) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


def _install_httpx_log_redaction() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrlFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_RedactUrlFilter())


__all__ = [
    "RetryPolicy",
    "TikTokClient",
    "TikTokCredentials",
    "encode_query",
    "redact_url",
]
