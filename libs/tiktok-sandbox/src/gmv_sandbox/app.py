"""The HTTP face of the sandbox: ``create_app(state) -> FastAPI``.

Three groups of routes:

* ``/open_api/v1.3/...``: the TikTok endpoints of ``gmv_sandbox.surface``, bound as
  plain Starlette routes (no FastAPI dependency solving on the hot path). Every
  answer is HTTP 200 with the envelope unless a fault says otherwise; a path
  without its trailing slash is a plain 404, as on TikTok.
* ``/portal/auth``: a stand-in for TikTok's consent page. It mints an auth code for
  the app and redirects to ``redirect_uri?auth_code=...&state=...``.
* ``/_sandbox/...``: the admin API (``gmv_sandbox.admin``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from gmv_sandbox.admin import admin_router
from gmv_sandbox.errors import SandboxAdminError
from gmv_sandbox.faults import FaultKind
from gmv_sandbox.state import Outcome, SandboxState
from gmv_sandbox.surface import ENDPOINTS, Call, Endpoint

RAW_SEND_KEY = "gmv_sandbox.raw_send"


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised in-process where a real server would close the socket silently.

    It is an ``httpx.TransportError``, so a client driven through
    ``httpx.ASGITransport`` meets the same exception family as over TCP.
    """


class OrjsonResponse(Response):
    """JSON rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class SandboxApp(FastAPI):
    """A FastAPI app that keeps the server's own ``send`` in the scope.

    Starlette wraps ``send`` on its way down; dropping a connection needs the
    server's original one (see ``_DropConnection``).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await super().__call__(scope, receive, send)


class _DropConnection(Response):
    """Close the client's connection without a single byte of response.

    Under uvicorn the raw ``send`` is a bound method of the request cycle, which
    owns the transport: closing it and marking the cycle disconnected makes
    uvicorn skip its "no response" 500. Anywhere else (``httpx.ASGITransport``)
    the drop surfaces as ``DroppedConnection``.
    """

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cycle = getattr(scope.get(RAW_SEND_KEY), "__self__", None)
        transport = getattr(cycle, "transport", None)
        if (
            cycle is not None
            and transport is not None
            and hasattr(cycle, "disconnected")
        ):
            cycle.disconnected = True
            transport.close()
            return
        raise DroppedConnection("Server disconnected without sending a response.")


def _json_object(raw: bytes) -> Mapping[str, Any] | None:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _render(outcome: Outcome) -> Response:
    if outcome.fault is FaultKind.DROP:
        return _DropConnection()
    if outcome.fault is FaultKind.HTTP_ERROR:
        phrase = HTTPStatus(outcome.http_status).phrase
        return PlainTextResponse(phrase, status_code=outcome.http_status)
    return Response(
        outcome.body,
        media_type="application/json",
        headers={"X-Tt-Logid": outcome.request_id},
    )


def _tiktok_route(
    state: SandboxState, endpoint: Endpoint
) -> Callable[[Request], Awaitable[Response]]:
    async def serve(request: Request) -> Response:
        body: Mapping[str, Any] | None = {}
        if endpoint.method == "POST":
            body = _json_object(await request.body())
        call = Call(
            params=request.query_params,
            body=body,
            access_token=request.headers.get("access-token"),
        )
        outcome = state.process(endpoint, call)
        if outcome.latency_seconds:
            await asyncio.sleep(outcome.latency_seconds)
        return _render(outcome)

    serve.__name__ = endpoint.name.replace("/", "_")
    return serve


def _consent_route(state: SandboxState) -> Callable[[Request], Awaitable[Response]]:
    async def consent(request: Request) -> Response:
        params = request.query_params
        app_id = params.get("app_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if app_id not in state.auths.apps or not redirect_uri:
            return PlainTextResponse("unknown app_id or missing redirect_uri", 400)
        raw_ids = params.get("advertiser_ids")
        advertiser_ids = raw_ids.split(",") if raw_ids else None
        code = state.mint_auth_code(app_id, advertiser_ids)
        query = {"auth_code": code.auth_code}
        if "state" in params:
            query["state"] = params["state"]
        return RedirectResponse(_with_query(redirect_uri, query), status_code=302)

    return consent


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(extra)) if q)
    return urlunsplit(parts._replace(query=query))


async def _admin_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SandboxAdminError)
    content = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": error.details,
        }
    }
    return OrjsonResponse(content, status_code=error.status)


def create_app(state: SandboxState) -> FastAPI:
    """The sandbox as an ASGI app: TikTok surface, consent page and admin API."""
    app = SandboxApp(
        title="GMV TikTok sandbox",
        summary="A local simulator of the TikTok API for Business endpoints GMV uses.",
        redirect_slashes=False,
        default_response_class=OrjsonResponse,
    )
    app.state.sandbox = state
    for endpoint in ENDPOINTS:
        app.router.add_route(
            endpoint.path,
            _tiktok_route(state, endpoint),
            methods=[endpoint.method],
            include_in_schema=False,
        )
    app.router.add_route("/portal/auth", _consent_route(state), methods=["GET"])
    app.include_router(admin_router(state))
    app.add_exception_handler(SandboxAdminError, _admin_error)
    return app
