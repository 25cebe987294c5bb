"""The options endpoint's hot path, answered before the framework resolves anything.

A dropdown page polls ``GET …/gmvmax/options`` with ``If-None-Match``, many users at once.
When this process already knows the caller and their role in the workspace (the access
caches, filled by an earlier request through the endpoint, for their TTL) and holds the
document (``DocumentCache``), the answer needs no database and no dependency resolution:
``OptionsEdge`` sends it at once, built by the same functions as the endpoint, so the bytes,
tags and headers are the endpoint's own. Everything else goes on to the endpoint, which fills
the caches: a query string (``?refresh=1``), an unknown or malformed credential, a cold cache,
an unsupported provider.

The application (``gmv_gateway.app.GatewayApp``) asks it first. Revocation and membership
changes clear the caches of this process at once (see ``gmv_gateway.auth.cache``).

The edge also keeps its caches warm, so clients polling a page never all miss together when
an entry ages out: in the last ``REFRESH_AHEAD_SECONDS`` of the caller's or role's entry, one
background task reads both again (``dependencies.refresh_access``); a document past its
freshness is served while one background task revalidates it by ETag
(``service.revalidate_document``). Invalidated entries are never served.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from gmv_common.logging import bind_context, get_logger
from gmv_gateway.bindings.endpoints import ACCOUNTS, PROVIDER_SPELLINGS
from gmv_gateway.dependencies import (
    AccessCaches,
    Credential,
    WorkspaceAccess,
    refresh_access,
)
from gmv_gateway.middleware import (
    ID_HEADERS,
    ROUTE_TEMPLATE,
    RequestIds,
    record_request,
)
from gmv_gateway.options.cache import CachedDocument, DocumentCache
from gmv_gateway.options.endpoints import options_response
from gmv_gateway.options.service import (
    OptionsReply,
    accepts_gzip,
    reply_from_document,
    revalidate_document,
)

log = get_logger(__name__)

# Of the access caches' five seconds: time enough for one refresh to land before expiry.
REFRESH_AHEAD_SECONDS = 1.5

# What a background task refreshes: ("access", credential key, workspace) or
# ("document", workspace, binding).
_WorkKey = tuple[str, str | int, int]

_PATH = re.compile(
    r"/api/v1/tenants/([0-9]{1,18})/providers/([a-z_-]+)"
    r"/accounts/([0-9]{1,18})/(gmvmax|gmv-max)/options"
)
_WANTED = ID_HEADERS | {
    b"authorization",
    b"cookie",
    b"if-none-match",
    b"accept-encoding",
    b"origin",
}


class OptionsEdge:
    """Answers from the caches in front of the application; ``answer`` says if it did.

    A request without ``Origin`` (scripts, same-origin pages) gets a ready-made answer: the
    endpoint's own bytes and headers, with the request id, latency sample and log line of
    ``gmv_gateway.middleware``. A cross-origin request goes through the application's own
    middleware (request context, CORS), built a second time around the prepared response,
    so its CORS headers are computed as on any route. Only the framework's routing,
    dependency resolution and error layers are skipped.
    """

    def __init__(self, app: Starlette) -> None:
        self._state = app.state
        self._cross_origin: ASGIApp = _send_prepared
        for cls, args, kwargs in reversed(app.user_middleware):
            self._cross_origin = cls(self._cross_origin, *args, **kwargs)
        self._refreshing: dict[_WorkKey, asyncio.Task[None]] = {}

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or (match := _PATH.fullmatch(scope["path"])) is None
            or match[2] not in PROVIDER_SPELLINGS
        ):
            return False
        started = time.perf_counter()
        found = self._cached(scope, match)
        if found is None:
            return False
        if found.cross_origin:
            scope[_PREPARED] = (found.access, options_response(found.reply()))
            await self._cross_origin(scope, receive, send)
        else:
            await _answer(scope, send, started, found)
        return True

    def _cached(self, scope: Scope, match: re.Match[str]) -> _Hit | None:
        """The caller, document and reply when all come from this process's caches."""
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED:
                headers.setdefault(name, value.decode("latin-1"))
        state = self._state
        credential = _credential(headers, state.runtime.settings.cookie_name)
        if credential is None:
            return None
        key = credential.cache_key
        workspace_id, auth_id = int(match[1]), int(match[3])
        caches: AccessCaches = state.access_caches
        access = caches.member_access(key, workspace_id)
        if access is None:
            return None
        if caches.due(key, access, REFRESH_AHEAD_SECONDS):
            client = scope.get("client")
            self._in_background(
                ("access", key, workspace_id),
                lambda: refresh_access(
                    state.runtime,
                    caches,
                    credential,
                    workspace_id,
                    ip=client[0] if client else None,
                ),
            )
        documents: DocumentCache = state.options_cache
        document = documents.get(workspace_id, auth_id)
        if document is None:
            document = documents.stale(workspace_id, auth_id)
            if document is None:
                return None
            self._in_background(
                ("document", workspace_id, auth_id),
                lambda: revalidate_document(
                    state.runtime, documents, workspace_id, auth_id
                ),
            )
        scope[ROUTE_TEMPLATE] = f"{ACCOUNTS}/{{auth_id}}/{match[4]}/options"
        return _Hit(
            access=access,
            document=document,
            if_none_match=headers.get(b"if-none-match"),
            accept_encoding=headers.get(b"accept-encoding"),
            ids=RequestIds(headers),
            cross_origin=b"origin" in headers,
        )

    def _in_background(
        self, key: _WorkKey, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``work`` unless the same work is running; its failure is logged, not raised."""
        if key in self._refreshing:
            return
        self._refreshing[key] = asyncio.ensure_future(self._run(key, work))

    async def _run(self, key: _WorkKey, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:
            # The entry simply ages out and the next request goes through the endpoint.
            log.warning("options.edge_refresh_failed", work=key[0], error=repr(exc))
        finally:
            del self._refreshing[key]


@dataclass(frozen=True, slots=True)
class _Hit:
    access: WorkspaceAccess
    document: CachedDocument
    if_none_match: str | None
    accept_encoding: str | None
    ids: RequestIds
    cross_origin: bool

    def reply(self) -> OptionsReply:
        return reply_from_document(
            self.document,
            if_none_match=self.if_none_match,
            gzip_ok=accepts_gzip(self.accept_encoding),
        )


# Ready answers kept per document, by the request's If-None-Match and Accept-Encoding values:
# a polling client sends the same pair every time. The values come from clients, so only this
# many pairs are kept; others are answered all the same, just not remembered.
MAX_ANSWERS_PER_DOCUMENT = 32


_PREPARED = "gmv.options_prepared"


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def _send_prepared(scope: Scope, receive: Receive, send: Send) -> None:
    access, response = scope.pop(_PREPARED)
    bind_context(user_id=access.user_id, workspace_id=access.workspace_id)
    await response(scope, receive, send)


async def _answer(scope: Scope, send: Send, started: float, hit: _Hit) -> None:
    answers = hit.document.answers
    key = (hit.if_none_match, hit.accept_encoding)
    answer: _Answer | None = answers.get(key)
    if answer is None:
        response = options_response(hit.reply())
        # What CORSMiddleware adds to an answer without Origin: Vary names it.
        headers = [
            (name, value + b", Origin" if name == b"vary" else value)
            for name, value in response.raw_headers
        ]
        answer = _Answer(response.status_code, headers, bytes(response.body))
        if len(answers) < MAX_ANSWERS_PER_DOCUMENT:
            answers[key] = answer
    ids = hit.ids
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [*answer.headers, (b"x-request-id", ids.request_id.encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
    access = hit.access
    record_request(
        scope,
        answer.status,
        started,
        lambda: {
            **ids.as_context(),
            "user_id": access.user_id,
            "workspace_id": access.workspace_id,
        },
    )


def _credential(headers: dict[bytes, str], cookie_name: str) -> Credential | None:
    """The request's credential, read as the endpoint reads it; None when it is malformed."""
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return Credential(token=token)
    cookie = cookie_parser(headers.get(b"cookie", "")).get(cookie_name)
    return Credential(cookie=cookie) if cookie else None
