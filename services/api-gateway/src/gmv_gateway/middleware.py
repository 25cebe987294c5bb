"""The request edge: request and correlation ids, one log line and one latency sample per request.

``RequestContextMiddleware`` is a pure ASGI middleware (no per-request task or body copy):

- ``X-Request-ID`` is taken from the request when it is a sane token, else generated, and
  sent back on every answer; ``X-Correlation-ID`` defaults to the request id. Both are bound
  in the log context for everything the request logs, and flow into outbox events.
- A W3C ``traceparent`` is continued from the request (a new span of the caller's trace) or
  started, bound in the log context, and carried by every outbox event in Kafka headers.
- The latency histogram is labelled by route template (``/api/v1/tenants/{workspace_id}/...``),
  never by raw path, so tenants and ids do not explode the label space.
- An exception no handler claimed becomes the error envelope (500, or 503 for a database
  outage) instead of a bare server error.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client.metrics import Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gmv_common.logging import bound_context, get_logger
from gmv_gateway.errors import render_unexpected
from gmv_gateway.ops.metrics import REQUEST_LATENCY

log = get_logger(__name__)
_access_log = logging.getLogger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$")
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
# Ids need to be unique, not secret: the process's PRNG spares a system call per id.
_random = random.Random()


def new_id(bits: int = 128) -> str:
    """``bits`` random bits as lowercase hex, zero-padded (the quickest such spelling)."""
    return _random.getrandbits(bits).to_bytes(bits // 8, "big").hex()


def traceparent_for(incoming: str | None) -> str:
    """A child span of the caller's trace, or the first span of a new one."""
    match = _TRACEPARENT.match(incoming or "")
    trace_id = match[1] if match and match[1] != "0" * 32 else new_id()
    flags = match[2] if match else "01"
    return f"00-{trace_id}-{new_id(64)}-{flags}"


UNMATCHED_ROUTE = "<unmatched>"
# Set by a layer that answers without a route (``options.edge``).
ROUTE_TEMPLATE = "gmv.route_template"


ID_HEADERS = frozenset({b"x-request-id", b"x-correlation-id", b"traceparent"})


def _sane(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return text if _SAFE_ID.match(text) else None


class RequestIds:
    """A request's ids: sane incoming ones kept, the rest made.

    ``headers`` maps raw header names to the first raw value the request sent (ASGI's bytes;
    only ``ID_HEADERS`` are read). The span id is made on first use of ``traceparent``.
    """

    __slots__ = (
        "_incoming_traceparent",
        "_traceparent",
        "correlation_id",
        "request_id",
    )

    def __init__(self, headers: Mapping[bytes, bytes]) -> None:
        request_id = headers.get(b"x-request-id")
        correlation_id = headers.get(b"x-correlation-id")
        traceparent = headers.get(b"traceparent")
        self._traceparent: str | None = None
        if request_id is None and correlation_id is None and traceparent is None:
            # Most requests carry none: every id is made here.
            self.request_id = self.correlation_id = new_id()
            self._incoming_traceparent = None
            return
        self.request_id = _sane(request_id) or new_id()
        self.correlation_id = _sane(correlation_id) or self.request_id
        self._incoming_traceparent = _sane(traceparent)

    @classmethod
    def of(cls, scope: Scope) -> RequestIds:
        found: dict[bytes, bytes] = {}
        for key, value in scope.get("headers", ()):
            if key in ID_HEADERS:
                found.setdefault(key, value)
        return cls(found)

    @property
    def traceparent(self) -> str:
        if self._traceparent is None:
            self._traceparent = traceparent_for(self._incoming_traceparent)
        return self._traceparent

    def as_context(self) -> dict[str, str]:
        return {
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
            "traceparent": self.traceparent,
        }


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request."""
    template = scope.get(ROUTE_TEMPLATE)
    if isinstance(template, str):
        return template
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    app = scope.get("app")
    for candidate in getattr(getattr(app, "router", None), "routes", ()):
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED_ROUTE))
    return UNMATCHED_ROUTE


_latency_children: dict[tuple[str, str, int], Histogram] = {}


def _method_label(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in METHODS else "OTHER"


def latency_histogram(scope: Scope, status_code: int) -> Histogram:
    """The latency histogram of the request's method, route template and status."""
    template = route_template(scope)
    method = _method_label(scope)
    key = (method, template, status_code)
    histogram = _latency_children.get(key)
    if histogram is None:
        histogram = REQUEST_LATENCY.labels(method, template, str(status_code))
        _latency_children[key] = histogram
    return histogram


def record_request(
    scope: Scope,
    status_code: int,
    started: float,
    context: Callable[[], dict[str, Any]] | None = None,
    *,
    histogram: Histogram | None = None,
) -> None:
    """One latency sample and one log line; ``context()`` adds to the bound log context.

    ``histogram`` is ``latency_histogram(scope, status_code)`` when the caller kept it.
    """
    elapsed = time.perf_counter() - started
    if histogram is None:
        histogram = latency_histogram(scope, status_code)
    histogram.observe(elapsed)
    if _access_log.isEnabledFor(logging.INFO):
        log.info(
            "http.request",
            method=_method_label(scope),
            route=route_template(scope),
            status=status_code,
            duration_ms=round(elapsed * 1000, 2),
            **(context() if context is not None else {}),
        )


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ids = RequestIds.of(scope)
        request_id_header = (b"x-request-id", ids.request_id.encode())
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers = message.get("headers")
                if isinstance(headers, list):
                    headers.append(request_id_header)
                else:
                    message = {
                        **message,
                        "headers": [*(headers or ()), request_id_header],
                    }
            await send(message)

        with bound_context(**ids.as_context()):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if status["sent"]:
                    raise
                response = render_unexpected(exc)
                await response(scope, receive, send_with_id)
            finally:
                record_request(scope, status["code"], started)
