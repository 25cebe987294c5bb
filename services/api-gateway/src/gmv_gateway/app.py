"""The API gateway: ``create_app(runtime)`` builds the FastAPI application.

Importing this module has no side effects; ``create_app`` only wires things. The lifespan
starts the gateway's background consumer of ``OptionsUpdated`` events (it wakes
``?refresh=1`` waiters) and stops it on shutdown. It does not start the outbox relay, the bus
or migrations: the CLI (``gmv serve api-gateway`` / ``gmv dev``) owns those.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from gmv_common.logging import get_logger
from gmv_common.runtime import Runtime
from gmv_gateway.auth.endpoints import router as auth_router
from gmv_gateway.bindings.endpoints import router as bindings_router
from gmv_gateway.catalog.endpoints import router as catalog_router
from gmv_gateway.config.endpoints import router as config_router
from gmv_gateway.dependencies import AccessCaches
from gmv_gateway.errors import install_error_handlers
from gmv_gateway.legacy.endpoints import router as legacy_router
from gmv_gateway.middleware import RequestContextMiddleware
from gmv_gateway.ops.endpoints import router as ops_router
from gmv_gateway.options.cache import DocumentCache
from gmv_gateway.options.edge import OptionsEdge
from gmv_gateway.options.endpoints import router as options_router
from gmv_gateway.options.waiter import OptionsWaiter, build_options_consumer
from gmv_gateway.sync.endpoints import router as sync_router
from gmv_gateway.tiktok import TikTokFactory, default_tiktok_factory
from gmv_gateway.workspaces.endpoints import router as members_router

log = get_logger(__name__)

EXPOSED_HEADERS = ["ETag", "X-Request-ID", "Retry-After", "X-Sync-Run-Id"]


def create_app(
    runtime: Runtime,
    *,
    tiktok_factory: TikTokFactory | None = None,
    consume_options_events: bool = True,
) -> FastAPI:
    """The gateway for ``runtime``; ``tiktok_factory`` swaps how TikTok clients are built."""
    waiter = OptionsWaiter()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if consume_options_events:
            consumer = build_options_consumer(runtime, waiter, app.options_cache)
            tasks.append(asyncio.create_task(consumer.run(stop)))
        log.info("gateway.started")
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, timeout=5)
            await app.state.tiktok.aclose()
            log.info("gateway.stopped")

    app = GatewayApp(
        title="GMV Backend API",
        version=runtime.settings.app_version,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.runtime = runtime
    app.state.options_waiter = waiter
    app.state.tiktok = (tiktok_factory or default_tiktok_factory)(runtime)

    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=runtime.settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(RequestContextMiddleware)
    for router in _routers():
        app.include_router(router)
    return app


class GatewayApp(FastAPI):
    """FastAPI with the options hot path (``OptionsEdge``) in front of everything.

    The per-process caches of the read path are typed attributes rather than ``app.state``
    entries: the hot path reads them on every request, and an attribute costs a tenth of a
    ``State`` lookup.
    """

    _edge: OptionsEdge | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access_caches = AccessCaches()
        self.options_cache = DocumentCache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._edge is None:
            self._edge = OptionsEdge(self)
        if not await self._edge.answer(scope, receive, send):
            await super().__call__(scope, receive, send)


def _routers() -> list[Any]:
    return [
        ops_router,
        auth_router,
        members_router,
        bindings_router,
        catalog_router,
        sync_router,
        config_router,
        options_router,
        legacy_router,
    ]


__all__: list[str] = ["create_app"]
