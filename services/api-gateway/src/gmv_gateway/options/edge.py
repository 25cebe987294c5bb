"""The options endpoint's hot path, answered before the framework resolves anything.

A dropdown page polls ``GET …/gmvmax/options`` with ``If-None-Match``, many users at once.
When this process already knows the caller and their role in the workspace (the access
caches, filled by an earlier request through the endpoint, for their TTL) and holds the
document (``DocumentCache``), the answer needs no database and no dependency resolution:
``OptionsEdge`` sends it at once, built by the same functions as the endpoint, so the bytes,
tags and headers are the endpoint's own. Everything else goes on to the endpoint, which fills
the caches: a query string (``?refresh=1``), an unknown or malformed credential, a cold cache,
an unsupported provider.

A caller polling one document sends the same few headers every time. What those inputs
resolved to is kept as a *lane*: the answer, plus the very cache entries (caller, role,
document) it was built from. The next identical request is answered after checking that
those entries are still the stored ones and not near their expiry, with no parsing, hashing
or lookups by key; any invalidation, refresh or expiry sends it through the full check
again, which builds a new lane.

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
from typing import Any, Protocol

from prometheus_client.metrics import Histogram
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from gmv_common.logging import bind_context, get_logger
from gmv_common.runtime import Runtime
from gmv_gateway.bindings.endpoints import ACCOUNTS, PROVIDER_SPELLINGS
from gmv_gateway.dependencies import (
    AccessCaches,
    Credential,
    WorkspaceAccess,
    refresh_access,
)
from gmv_gateway.middleware import (
    ROUTE_TEMPLATE,
    RequestIds,
    latency_histogram,
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
# Lanes kept per process; a full table is emptied, as the other caches are.
MAX_LANES = 10_000

# A request's inputs to its answer: path, Authorization, Cookie, If-None-Match and
# Accept-Encoding, as sent.
_LaneKey = tuple[str, bytes | None, bytes | None, bytes | None, bytes | None]


class ServedApp(Protocol):
    """The application the edge stands in front of (``gmv_gateway.app.GatewayApp``)."""

    state: State
    user_middleware: list[Middleware]
    access_caches: AccessCaches
    options_cache: DocumentCache


class OptionsEdge:
    """Answers from the caches in front of the application; ``answer`` says if it did.

    A request without ``Origin`` (scripts, same-origin pages) gets a ready-made answer: the
    endpoint's own bytes and headers, with the request id, latency sample and log line of
    ``gmv_gateway.middleware``. A cross-origin request goes through the application's own
    middleware (request context, CORS), built a second time around the prepared response,
    so its CORS headers are computed as on any route. Only the framework's routing,
    dependency resolution and error layers are skipped.
    """

    def __init__(self, app: ServedApp) -> None:
        self._app = app
        self._runtime: Runtime = app.state.runtime
        self._cross_origin: ASGIApp = _send_prepared
        for cls, args, kwargs in reversed(app.user_middleware):
            self._cross_origin = cls(self._cross_origin, *args, **kwargs)
        self._refreshing: dict[_WorkKey, asyncio.Task[None]] = {}
        self._lanes: dict[_LaneKey, _Lane] = {}

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> bool:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("query_string")
            or not scope["path"].endswith("/options")
        ):
            return False
        started = time.perf_counter()
        # The first value of each header, as the endpoint reads them.
        headers: dict[bytes, bytes] = dict(reversed(scope["headers"]))
        cross_origin = b"origin" in headers
        if not cross_origin:
            lane_key: _LaneKey = (
                scope["path"],
                headers.get(b"authorization"),
                headers.get(b"cookie"),
                headers.get(b"if-none-match"),
                headers.get(b"accept-encoding"),
            )
            lane = self._lanes.get(lane_key)
            if lane is not None and self._holds(lane):
                scope[ROUTE_TEMPLATE] = lane.template
                await _send_answer(
                    scope,
                    send,
                    started,
                    lane.answer,
                    RequestIds(headers),
                    (lane.user_id, lane.workspace_id),
                    lane.histogram,
                )
                return True
        match = _PATH.fullmatch(scope["path"])
        if match is None or match[2] not in PROVIDER_SPELLINGS:
            return False
        found = self._cached(scope, match, headers)
        if found is None:
            return False
        if cross_origin:
            scope[_PREPARED] = (found.access, options_response(found.reply()))
            await self._cross_origin(scope, receive, send)
            return True
        answer = _ready_answer(found)
        lane = found.lane(answer, scope)
        if lane is not None:
            if len(self._lanes) >= MAX_LANES:
                self._lanes.clear()
            self._lanes[lane_key] = lane
        access = found.access
        await _send_answer(
            scope,
            send,
            started,
            answer,
            RequestIds(headers),
            (access.user_id, access.workspace_id),
        )
        return True

    def _holds(self, lane: _Lane) -> bool:
        """Whether the entries the lane was built from are still the stored ones."""
        if time.monotonic() >= lane.valid_until:
            return False
        sources = lane.sources
        app = self._app
        return (
            app.access_caches.principals.entry(sources.credential_key)
            is sources.principal_entry
            and app.access_caches.roles.entry(sources.role_key) is sources.role_entry
            and app.options_cache.entry(sources.document_key) is sources.document_entry
        )

    def _cached(
        self, scope: Scope, match: re.Match[str], headers: dict[bytes, bytes]
    ) -> _Hit | None:
        """The caller, document and reply when all come from this process's caches."""
        runtime = self._runtime
        credential = _credential(headers, runtime.settings.cookie_name)
        if credential is None:
            return None
        key = credential.cache_key
        workspace_id, auth_id = int(match[1]), int(match[3])
        caches = self._app.access_caches
        access = caches.member_access(key, workspace_id)
        if access is None:
            return None
        if caches.due(key, access, REFRESH_AHEAD_SECONDS):
            client = scope.get("client")
            self._in_background(
                ("access", key, workspace_id),
                lambda: refresh_access(
                    runtime,
                    caches,
                    credential,
                    workspace_id,
                    ip=client[0] if client else None,
                ),
            )
        documents = self._app.options_cache
        fresh = True
        document = documents.get(workspace_id, auth_id)
        if document is None:
            fresh = False
            document = documents.stale(workspace_id, auth_id)
            if document is None:
                return None
            self._in_background(
                ("document", workspace_id, auth_id),
                lambda: revalidate_document(runtime, documents, workspace_id, auth_id),
            )
        scope[ROUTE_TEMPLATE] = f"{ACCOUNTS}/{{auth_id}}/{match[4]}/options"
        inm, encoding = headers.get(b"if-none-match"), headers.get(b"accept-encoding")
        return _Hit(
            access=access,
            document=document,
            if_none_match=None if inm is None else inm.decode("latin-1"),
            accept_encoding=None if encoding is None else encoding.decode("latin-1"),
            sources=_Sources.of(caches, documents, key, access, auth_id)
            if fresh
            else None,
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
class _Sources:
    """The cache entries an answer was built from, as stored when it was built."""

    credential_key: str
    principal_entry: tuple[float, Any]
    role_key: tuple[int, int]
    role_entry: tuple[float, str]
    document_key: tuple[int, int]
    document_entry: tuple[float, CachedDocument]

    @classmethod
    def of(
        cls,
        caches: AccessCaches,
        documents: DocumentCache,
        credential_key: str,
        access: WorkspaceAccess,
        auth_id: int,
    ) -> _Sources | None:
        role_key = (access.user_id, access.workspace_id)
        document_key = (access.workspace_id, auth_id)
        principal_entry = caches.principals.entry(credential_key)
        role_entry = caches.roles.entry(role_key)
        document_entry = documents.entry(document_key)
        if principal_entry is None or role_entry is None or document_entry is None:
            return None
        return cls(
            credential_key=credential_key,
            principal_entry=principal_entry,
            role_key=role_key,
            role_entry=role_entry,
            document_key=document_key,
            document_entry=document_entry,
        )

    @property
    def valid_until(self) -> float:
        """When the answer must be checked in full again: a refresh is due, or the document."""
        due = min(self.principal_entry[0], self.role_entry[0]) - REFRESH_AHEAD_SECONDS
        return min(due, self.document_entry[0])


@dataclass(frozen=True, slots=True)
class _Lane:
    """A ready answer for one request's inputs, valid while its sources are stored."""

    answer: _Answer
    template: str
    histogram: Histogram
    user_id: int
    workspace_id: int
    valid_until: float
    sources: _Sources


@dataclass(frozen=True, slots=True)
class _Hit:
    access: WorkspaceAccess
    document: CachedDocument
    if_none_match: str | None
    accept_encoding: str | None
    # None when the document was served stale (it is being revalidated).
    sources: _Sources | None

    def reply(self) -> OptionsReply:
        return reply_from_document(
            self.document,
            if_none_match=self.if_none_match,
            gzip_ok=accepts_gzip(self.accept_encoding),
        )

    def lane(self, answer: _Answer, scope: Scope) -> _Lane | None:
        sources = self.sources
        if sources is None:
            return None
        valid_until = sources.valid_until
        if valid_until <= time.monotonic():
            return None
        return _Lane(
            answer=answer,
            template=scope[ROUTE_TEMPLATE],
            histogram=latency_histogram(scope, answer.status),
            user_id=self.access.user_id,
            workspace_id=self.access.workspace_id,
            valid_until=valid_until,
            sources=sources,
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


def _ready_answer(hit: _Hit) -> _Answer:
    """The endpoint's answer to the hit's request, remembered on the document."""
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
    return answer


async def _send_answer(
    scope: Scope,
    send: Send,
    started: float,
    answer: _Answer,
    ids: RequestIds,
    caller: tuple[int, int],
    histogram: Histogram | None = None,
) -> None:
    """Send ``answer`` and record it; ``caller`` is the (user_id, workspace_id) it served."""
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [*answer.headers, (b"x-request-id", ids.request_id.encode())],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})
    record_request(
        scope,
        answer.status,
        started,
        lambda: {
            **ids.as_context(),
            "user_id": caller[0],
            "workspace_id": caller[1],
        },
        histogram=histogram,
    )


def _credential(headers: dict[bytes, bytes], cookie_name: str) -> Credential | None:
    """The request's credential, read as the endpoint reads it; None when it is malformed."""
    authorization = headers.get(b"authorization")
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return Credential(token=token)
    cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
    cookie = cookies.get(cookie_name)
    return Credential(cookie=cookie) if cookie else None
