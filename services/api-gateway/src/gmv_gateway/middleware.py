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

import re
import time
import uuid
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gmv_common.logging import bound_context, get_logger
from gmv_gateway.errors import render_unexpected
from gmv_gateway.ops.metrics import REQUEST_LATENCY

log = get_logger(__name__)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$")


def traceparent_for(incoming: str | None) -> str:
    """A child span of the caller's trace, or the first span of a new one."""
    match = _TRACEPARENT.match(incoming or "")
    trace_id = match[1] if match and match[1] != "0" * 32 else uuid.uuid4().hex
    flags = match[2] if match else "01"
    return f"00-{trace_id}-{uuid.uuid4().hex[:16]}-{flags}"


UNMATCHED_ROUTE = "<unmatched>"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text = value.decode("latin-1")
            return text if _SAFE_ID.match(text) else None
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request."""
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


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
        correlation_id = _header(scope, b"x-correlation-id") or request_id
        traceparent = traceparent_for(_header(scope, b"traceparent"))
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                headers: list[Any] = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with bound_context(
            request_id=request_id,
            correlation_id=correlation_id,
            traceparent=traceparent,
        ):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if status["sent"]:
                    raise
                response = render_unexpected(exc)
                await response(scope, receive, send_with_id)
            finally:
                self._record(scope, status["code"], started)

    def _record(self, scope: Scope, status_code: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        template = route_template(scope)
        REQUEST_LATENCY.labels(scope["method"], template, str(status_code)).observe(
            elapsed
        )
        log.info(
            "http.request",
            method=scope["method"],
            route=template,
            status=status_code,
            duration_ms=round(elapsed * 1000, 2),
        )
