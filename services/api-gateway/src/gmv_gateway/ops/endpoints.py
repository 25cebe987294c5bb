"""``/healthz`` (the process answers), ``/readyz`` (database and bus reachable), ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.responses import JSONResponse

from gmv_gateway.ops import service

router = APIRouter(tags=["ops"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Database and bus are reachable",
    responses={503: {"description": "A dependency is unavailable"}},
)
async def readyz(request: Request) -> JSONResponse:
    ready, checks = await service.readiness(request.app.state.runtime)
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    body, content_type = await service.render_metrics(request.app.state.runtime)
    return Response(body, media_type=content_type)
