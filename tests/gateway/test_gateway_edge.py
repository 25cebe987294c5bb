"""The edge: error envelope, request ids, CORS, health, readiness and metrics."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gmv_common.bus.memory import InMemoryBus
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings
from gmv_gateway.app import create_app


async def test_unknown_route_answers_the_error_envelope(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/nowhere")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "NOT_FOUND", "message": "Not Found", "details": {}}
    }


async def test_validation_error_is_422_with_field_errors(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": "x"})

    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "VALIDATION_FAILED"
    locations = [error["loc"] for error in body["details"]["errors"]]
    assert ["body", "password"] in locations


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    generated = await client.get("/healthz")

    assert given.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32


async def test_unsafe_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "a b\tc"})

    assert response.headers["x-request-id"] != "a b\tc"


async def test_cors_allows_configured_origin_with_credentials(
    client: httpx.AsyncClient,
) -> None:
    allowed = await client.options(
        "/api/v1/auth/me",
        headers={
            "Origin": "http://spa.test",
            "Access-Control-Request-Method": "GET",
        },
    )
    foreign = await client.options(
        "/api/v1/auth/me",
        headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "GET"},
    )

    assert allowed.headers["access-control-allow-origin"] == "http://spa.test"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in foreign.headers


async def test_healthz_and_readyz_answer_when_dependencies_are_up(
    client: httpx.AsyncClient,
) -> None:
    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "bus": "ok"}


async def test_metrics_expose_latency_by_route_template_and_run_counts(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/api/v1/tenants/77/members")

    response = await client.get("/metrics")

    text = response.text
    assert 'route="/api/v1/tenants/{workspace_id}/members"' in text
    assert "/api/v1/tenants/77/members" not in text
    assert 'gmv_sync_runs{scope="meta",status="queued"}' in text


@pytest.fixture
def unreachable_settings(make_settings: object) -> Settings:
    assert callable(make_settings)
    settings: Settings = make_settings(
        database_url="mysql+aiomysql://gmv:gmv@127.0.0.1:9/gmv",
        database_pool_timeout=1.0,
    )
    return settings


async def test_database_outage_is_503_not_a_hang(
    unreachable_settings: Settings,
) -> None:
    runtime = Runtime.create(unreachable_settings, bus=InMemoryBus(2))
    app = create_app(runtime, consume_options_events=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client,
    ):
        response = await client.get(
            "/api/v1/auth/me", headers={"Authorization": "Bearer gmv_whatever"}
        )
        ready = await client.get("/readyz")
    await runtime.close()

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    assert ready.status_code == 503


async def test_openapi_declares_error_envelope_on_tenant_routes(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/openapi.json")

    paths = response.json()["paths"]
    tenant_operations = [
        (path, method, operation)
        for path, methods in paths.items()
        if path.startswith("/api/v1/tenants/")
        for method, operation in methods.items()
    ]
    assert len(tenant_operations) >= 20
    for path, method, operation in tenant_operations:
        declared = operation["responses"]
        assert "404" in declared or "410" in declared, (method, path)
        error = declared.get("404") or declared["410"]
        schema = error["content"]["application/json"]["schema"]["$ref"]
        assert schema.endswith("/ErrorResponse"), (method, path)
