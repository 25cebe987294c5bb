"""Binding configuration: read, validated save, and the product auto-sync schedule."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from gateway_support import API_BASE, Seed, Tenant, bearer
from sqlalchemy import select

from gmv_common.db.base import utcnow
from gmv_common.db.models import AuditLogEntry, Binding, GmvMaxBindingConfig, Schedule
from gmv_common.runtime import Runtime


async def _account(seed: Seed, *, status: str = "active") -> tuple[Tenant, Binding]:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    binding = await seed.binding(workspace_id=tenant.id, app=app, status=status)
    await seed.catalog(binding=binding)
    return tenant, binding


def _path(tenant: Tenant, binding: Binding, spelling: str = "gmvmax") -> str:
    return (
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/"
        f"{binding.id}/{spelling}/config"
    )


SELECTION = {"bc_id": "bc-1", "advertiser_id": "adv-1", "store_id": "store-1"}


async def test_config_defaults_before_anything_is_saved(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding, "gmv-max"), headers=bearer(tenant.member_token)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["auto_sync_products"] is False
    assert body["last_manual_sync"] is None
    assert body["advertiser_id"] is None


async def test_saving_auto_sync_creates_the_product_schedule(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)

    saved = await client.put(
        _path(tenant, binding),
        json={
            **SELECTION,
            "auto_sync_products": True,
            "auto_sync_interval_seconds": 1800,
        },
        headers=bearer(tenant.admin_token),
    )
    read = await client.get(_path(tenant, binding), headers=bearer(tenant.member_token))

    assert saved.status_code == 200
    assert read.json()["auto_sync_products"] is True
    assert read.json()["auto_sync_interval_seconds"] == 1800
    async with runtime.sessionmaker() as session:
        schedule = await session.scalar(
            select(Schedule).where(Schedule.task_kind == "ttb.sync.products")
        )
        actions = (await session.scalars(select(AuditLogEntry.action))).all()
    assert schedule is not None
    assert schedule.enabled is True
    assert schedule.params["advertiser_id"] == "adv-1"
    assert "config.updated" in actions


async def test_turning_auto_sync_off_disables_the_schedule(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    headers = bearer(tenant.admin_token)
    await client.put(
        _path(tenant, binding),
        json={**SELECTION, "auto_sync_products": True},
        headers=headers,
    )

    response = await client.put(
        _path(tenant, binding),
        json={**SELECTION, "auto_sync_products": False},
        headers=headers,
    )

    assert response.status_code == 200
    async with runtime.sessionmaker() as session:
        schedule = await session.scalar(select(Schedule))
    assert schedule is not None
    assert schedule.enabled is False


async def test_last_syncs_are_reported_with_summaries(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    await client.put(
        _path(tenant, binding), json=SELECTION, headers=bearer(tenant.admin_token)
    )
    async with runtime.sessionmaker.begin() as session:
        config = await session.scalar(select(GmvMaxBindingConfig))
        assert config is not None
        config.last_manual_sync_at = utcnow() - timedelta(minutes=5)
        config.last_manual_run_id = 7
        config.last_manual_summary = {"products": {"added": 3}}

    response = await client.get(
        _path(tenant, binding), headers=bearer(tenant.member_token)
    )

    body = response.json()
    assert body["last_manual_sync"]["run_id"] == 7
    assert body["last_manual_sync"]["summary"] == {"products": {"added": 3}}
    assert body["last_manual_sync_summary"] == {"products": {"added": 3}}
    assert body["last_auto_sync"] is None


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**SELECTION, "bc_id": "bc-x"}, 404, "BUSINESS_CENTER_NOT_FOUND"),
        ({**SELECTION, "advertiser_id": "adv-x"}, 404, "ADVERTISER_NOT_FOUND"),
        ({**SELECTION, "store_id": "store-x"}, 404, "STORE_NOT_FOUND"),
        (
            {**SELECTION, "advertiser_id": "adv-3"},
            400,
            "ADVERTISER_NOT_LINKED_TO_STORE",
        ),
        (
            {**SELECTION, "bc_id": "bc-2"},
            422,
            "BC_MISMATCH_BETWEEN_ADVERTISER_AND_STORE",
        ),
        ({"auto_sync_products": True}, 400, "ADVERTISER_REQUIRED_FOR_GMV_MAX"),
        (
            {"advertiser_id": "adv-1", "auto_sync_products": True},
            400,
            "STORE_ID_REQUIRED_FOR_GMV_MAX",
        ),
        ({**SELECTION, "auto_sync_interval_seconds": 899}, 422, "VALIDATION_FAILED"),
    ],
)
async def test_config_validation_codes(
    client: httpx.AsyncClient,
    seed: Seed,
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    tenant, binding = await _account(seed)

    response = await client.put(
        _path(tenant, binding), json=body, headers=bearer(tenant.admin_token)
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_member_cannot_save_config(client: httpx.AsyncClient, seed: Seed) -> None:
    tenant, binding = await _account(seed)

    response = await client.put(
        _path(tenant, binding), json=SELECTION, headers=bearer(tenant.member_token)
    )

    assert response.status_code == 403
