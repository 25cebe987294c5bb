"""Sync requests, their validation codes and guards, and the run records."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_support import API_BASE, Seed, Tenant, bearer
from sqlalchemy import select

from gmv_common.db.models import AuditLogEntry, Binding, OutboxMessage, SyncRun
from gmv_common.runtime import Runtime


async def _account(seed: Seed, *, status: str = "active") -> tuple[Tenant, Binding]:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    binding = await seed.binding(workspace_id=tenant.id, app=app, status=status)
    await seed.catalog(binding=binding)
    return tenant, binding


def _path(tenant: Tenant, binding: Binding, tail: str = "sync") -> str:
    return (
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/{binding.id}/{tail}"
    )


async def _sync(
    client: httpx.AsyncClient,
    tenant: Tenant,
    binding: Binding,
    body: dict[str, Any],
    **headers: str,
) -> httpx.Response:
    return await client.post(
        _path(tenant, binding),
        json=body,
        headers={**bearer(tenant.admin_token), **headers},
    )


PAIR = {"advertiser_id": "adv-1", "store_id": "store-1"}


async def test_meta_sync_is_accepted_with_run_and_command_in_outbox(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)

    response = await _sync(client, tenant, binding, {"scope": "meta"})

    assert response.status_code == 202
    body = response.json()
    assert body["created"] is True
    assert body["run"]["status"] == "queued"
    assert body["run"]["scope"] == "meta"
    async with runtime.sessionmaker() as session:
        commands = (await session.scalars(select(OutboxMessage.topic))).all()
        actions = (await session.scalars(select(AuditLogEntry.action))).all()
    assert any(topic.endswith("commands.meta-sync") for topic in commands)
    assert "sync.requested" in actions


async def test_second_meta_sync_joins_the_first(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    first = await _sync(client, tenant, binding, {"scope": "meta"})
    second = await _sync(client, tenant, binding, {"scope": "meta"})
    conflict = await _sync(
        client, tenant, binding, {"scope": "meta", "if_active": "conflict"}
    )

    assert second.status_code == 202
    assert second.json()["run"]["id"] == first.json()["run"]["id"]
    assert second.json()["joined"] == "active"
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "SYNC_IN_PROGRESS"


async def test_product_sync_uses_options_and_resolves_center(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await _sync(
        client,
        tenant,
        binding,
        {"scope": "products", "mode": "incremental", "options": PAIR},
    )

    assert response.status_code == 202
    assert response.json()["run"]["params"] == {
        "advertiser_id": "adv-1",
        "bc_id": "bc-1",
        "eligibility": "gmv_max",
        "store_id": "store-1",
    }


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        ({"store_id": "store-1"}, 400, "ADVERTISER_REQUIRED_FOR_GMV_MAX"),
        ({"advertiser_id": "adv-1"}, 400, "STORE_ID_REQUIRED_FOR_GMV_MAX"),
        (
            {"advertiser_id": "adv-x", "store_id": "store-1"},
            404,
            "ADVERTISER_NOT_FOUND",
        ),
        ({"advertiser_id": "adv-1", "store_id": "store-x"}, 404, "STORE_NOT_FOUND"),
        (
            {"advertiser_id": "adv-3", "store_id": "store-1"},
            400,
            "ADVERTISER_NOT_LINKED_TO_STORE",
        ),
        (
            {**PAIR, "bc_id": "bc-2"},
            422,
            "BC_MISMATCH_BETWEEN_ADVERTISER_AND_STORE",
        ),
    ],
)
async def test_product_sync_validation_codes(
    client: httpx.AsyncClient,
    seed: Seed,
    options: dict[str, str],
    status: int,
    code: str,
) -> None:
    tenant, binding = await _account(seed)

    response = await _sync(
        client, tenant, binding, {"scope": "products", "options": options}
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_product_sync_in_progress_joins_or_conflicts(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    body = {"scope": "products", "options": PAIR}

    first = await _sync(client, tenant, binding, body)
    joined = await _sync(client, tenant, binding, body)
    refused = await _sync(client, tenant, binding, {**body, "if_active": "conflict"})

    assert joined.json()["run"]["id"] == first.json()["run"]["id"]
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "SYNC_IN_PROGRESS"


async def test_product_sync_within_cooldown_is_429(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    body = {"scope": "products", "options": PAIR}
    first = await _sync(client, tenant, binding, body)
    async with runtime.sessionmaker.begin() as session:
        run = await session.get(SyncRun, first.json()["run"]["id"])
        assert run is not None
        run.status = "succeeded"
        run.active_key = None

    response = await _sync(client, tenant, binding, body)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "SYNC_RATE_LIMITED"
    assert int(response.headers["retry-after"]) > 0


async def test_idempotency_key_header_returns_the_same_run(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    first = await _sync(
        client, tenant, binding, {"scope": "meta"}, **{"Idempotency-Key": "k-1"}
    )
    again = await _sync(client, tenant, binding, {"idempotency_key": "k-1"})

    assert again.json()["run"]["id"] == first.json()["run"]["id"]
    assert again.json()["joined"] == "idempotency_key"
    assert first.json()["run"]["idempotency_key"] == "k-1"


async def test_idempotency_key_longer_than_128_is_rejected(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await _sync(client, tenant, binding, {"idempotency_key": "k" * 129})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_idempotency_key_reused_for_another_pair_is_409(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    await _sync(
        client,
        tenant,
        binding,
        {"scope": "products", "options": PAIR, "idempotency_key": "same"},
    )

    response = await _sync(
        client,
        tenant,
        binding,
        {
            "scope": "products",
            "options": {"advertiser_id": "adv-2", "store_id": "store-1"},
            "idempotency_key": "same",
        },
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


@pytest.mark.parametrize("status", ["needs_reauth", "revoked"])
async def test_sync_of_unusable_binding_is_409(
    client: httpx.AsyncClient, seed: Seed, status: str
) -> None:
    tenant, binding = await _account(seed, status=status)

    response = await _sync(client, tenant, binding, {"scope": "meta"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "BINDING_NEEDS_REAUTH"


async def test_member_cannot_request_sync(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.post(
        _path(tenant, binding), json={}, headers=bearer(tenant.member_token)
    )

    assert response.status_code == 403


async def test_runs_are_listed_filtered_and_readable(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    await seed.run(binding=binding, scope="meta", status="succeeded")
    failed = await seed.run(binding=binding, scope="products", status="failed")
    headers = bearer(tenant.member_token)

    everything = await client.get(_path(tenant, binding, "sync-runs"), headers=headers)
    only_failed = await client.get(
        _path(tenant, binding, "sync-runs"),
        params={"status": "failed", "scope": "products", "trigger": "manual"},
        headers=headers,
    )
    one = await client.get(
        _path(tenant, binding, f"sync-runs/{failed.id}"), headers=headers
    )
    missing = await client.get(
        _path(tenant, binding, "sync-runs/999999"), headers=headers
    )

    assert everything.json()["total"] == 2
    assert [run["id"] for run in only_failed.json()["items"]] == [failed.id]
    assert one.json()["status"] == "failed"
    assert missing.status_code == 404


async def test_sync_command_continues_the_callers_trace_in_kafka_headers(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"

    response = await _sync(
        client, tenant, binding, {"scope": "meta"}, traceparent=incoming
    )

    assert response.status_code == 202
    async with runtime.sessionmaker() as session:
        headers = (await session.scalars(select(OutboxMessage.headers))).one()
    version, traced, span, flags = headers["traceparent"].split("-")
    assert (version, traced, flags) == ("00", trace_id, "01")
    assert span != "00f067aa0ba902b7"
    assert headers["ce_correlationid"] == response.headers["x-request-id"]
