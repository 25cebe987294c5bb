"""The older API's browsing endpoints without an account, and its ``/ttb/`` catch-all.

They answer 410 ``TTB_LEGACY_DISABLED`` for any method, before authentication, so a stale
client learns where to go instead of getting 401 or 422. The replacement lives under
``…/providers/tiktok-business/accounts/{auth_id}/...``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from fastapi import APIRouter

from gmv_common.errors import GMVError
from gmv_gateway.errors import error_responses

router = APIRouter(tags=["legacy"])

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
LEGACY_LISTS = ("business-centers", "advertisers", "stores", "products")


class LegacyDisabledError(GMVError):
    status_code = 410
    default_code = "TTB_LEGACY_DISABLED"


def _gone(replacement: str) -> NoReturn:
    raise LegacyDisabledError(
        "this endpoint was retired; use the per-account endpoints",
        details={"replacement": replacement},
    )


def _list_endpoint(kind: str) -> Callable[[int, str], Awaitable[NoReturn]]:
    async def retired(workspace_id: int, provider: str) -> NoReturn:
        _gone(
            f"/api/v1/tenants/{workspace_id}/providers/tiktok-business/"
            f"accounts/{{auth_id}}/{kind}"
        )

    retired.__name__ = f"legacy_{kind.replace('-', '_')}"
    return retired


def _ttb_endpoint() -> Callable[[int, str], Awaitable[NoReturn]]:
    async def retired(workspace_id: int, path: str) -> NoReturn:
        _gone(f"/api/v1/tenants/{workspace_id}/providers/tiktok-business/accounts")

    return retired


# One route per method: each gets its own OpenAPI operation id.
for _method in ALL_METHODS:
    for _kind in LEGACY_LISTS:
        router.add_api_route(
            f"/api/v1/tenants/{{workspace_id}}/providers/{{provider}}/{_kind}",
            _list_endpoint(_kind),
            methods=[_method],
            responses=error_responses(410),
            response_model=None,
            summary=f"Retired: {_kind} without an account",
            operation_id=f"legacy_{_kind.replace('-', '_')}_{_method.lower()}",
            deprecated=True,
        )
    router.add_api_route(
        "/api/v1/tenants/{workspace_id}/ttb/{path:path}",
        _ttb_endpoint(),
        methods=[_method],
        responses=error_responses(410),
        response_model=None,
        summary="Retired: the /ttb/ browsing API",
        operation_id=f"legacy_ttb_{_method.lower()}",
        deprecated=True,
    )
