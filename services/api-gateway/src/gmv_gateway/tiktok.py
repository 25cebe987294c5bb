"""How the gateway reaches TikTok: one shared limiter, one client per provider app call.

The gateway calls TikTok only for OAuth (code exchange) and revocation, at interactive
priority, through the same app-wide limiter as the workers. Tests pass a factory whose
clients talk to the sandbox in-process.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from gmv_common.bindings import build_rate_limiter, build_tiktok_client
from gmv_common.db.models import ProviderApp
from gmv_common.runtime import Runtime
from gmv_common.tiktok import RateLimiter, TikTokClient


class TikTokAccess:
    def __init__(
        self,
        runtime: Runtime,
        limiter: RateLimiter,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._runtime = runtime
        self._limiter = limiter
        self._transport = transport

    async def client_for(self, app: ProviderApp) -> TikTokClient:
        """A client for ``app``; use it as ``async with`` so it is closed."""
        await self._limiter.set_qps(app.app_id, app.qps_limit)
        return build_tiktok_client(
            self._runtime.settings,
            limiter=self._limiter,
            app=app,
            transport=self._transport,
        )

    async def aclose(self) -> None:
        return None


TikTokFactory = Callable[[Runtime], TikTokAccess]


def default_tiktok_factory(runtime: Runtime) -> TikTokAccess:
    return TikTokAccess(
        runtime, build_rate_limiter(runtime.sessionmaker, runtime.settings)
    )
