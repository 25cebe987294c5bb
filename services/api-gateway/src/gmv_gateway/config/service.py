"""Read and save a binding's GMV Max configuration; keep its product auto-sync in step.

Saving validates the selection with the sync request's codes (``ADVERTISER_NOT_FOUND``,
``STORE_NOT_FOUND``, ``ADVERTISER_NOT_LINKED_TO_STORE``, ``BC_MISMATCH_…``; an unknown center is
404 ``BUSINESS_CENTER_NOT_FOUND``), then hands the row to ``gmv_product_sync``'s
``apply_auto_sync_config``, which creates, updates or disables the schedule in the same
transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import GmvMaxBindingConfig
from gmv_common.errors import NotFoundError
from gmv_common.settings import Settings
from gmv_gateway import audit
from gmv_gateway.bindings.service import require_binding
from gmv_gateway.catalog import repository as catalog
from gmv_gateway.config import repository
from gmv_gateway.config.schemas import ConfigIn, ConfigOut, LastSyncOut
from gmv_gateway.dependencies import WorkspaceAccess
from gmv_gateway.sync.service import check_pair, require_usable
from gmv_product_sync.scheduler import apply_auto_sync_config


def config_out(auth_id: int, config: GmvMaxBindingConfig | None) -> ConfigOut:
    if config is None:
        return ConfigOut(
            auth_id=auth_id,
            bc_id=None,
            advertiser_id=None,
            store_id=None,
            eligibility="gmv_max",
            auto_sync_products=False,
            auto_sync_interval_seconds=3600,
            last_manual_sync=None,
            last_auto_sync=None,
            last_manual_synced_at=None,
            last_manual_sync_summary=None,
            last_auto_synced_at=None,
            last_auto_sync_summary=None,
            updated_at=None,
        )
    manual = (
        LastSyncOut(
            at=config.last_manual_sync_at,
            run_id=config.last_manual_run_id,
            summary=config.last_manual_summary,
        )
        if config.last_manual_sync_at
        else None
    )
    auto = (
        LastSyncOut(
            at=config.last_auto_sync_at,
            run_id=config.last_auto_run_id,
            summary=config.last_auto_summary,
        )
        if config.last_auto_sync_at
        else None
    )
    return ConfigOut(
        auth_id=auth_id,
        bc_id=config.bc_id,
        advertiser_id=config.advertiser_id,
        store_id=config.store_id,
        eligibility=config.eligibility,
        auto_sync_products=config.auto_sync_products,
        auto_sync_interval_seconds=config.auto_sync_interval_seconds,
        last_manual_sync=manual,
        last_auto_sync=auto,
        last_manual_synced_at=config.last_manual_sync_at,
        last_manual_sync_summary=config.last_manual_summary,
        last_auto_synced_at=config.last_auto_sync_at,
        last_auto_sync_summary=config.last_auto_summary,
        updated_at=config.updated_at,
    )


async def get_config(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> ConfigOut:
    await require_binding(session, workspace_id, auth_id)
    return config_out(
        auth_id, await repository.config_of(session, workspace_id, auth_id)
    )


async def save_config(
    session: AsyncSession,
    settings: Settings,
    access: WorkspaceAccess,
    auth_id: int,
    body: ConfigIn,
) -> ConfigOut:
    workspace_id = access.workspace_id
    binding = await require_binding(session, workspace_id, auth_id)
    if body.auto_sync_products:
        require_usable(binding)
    if body.bc_id is not None and (
        await catalog.business_center(session, workspace_id, auth_id, body.bc_id)
        is None
    ):
        raise NotFoundError(
            "business center not found in this account",
            code="BUSINESS_CENTER_NOT_FOUND",
            details={"bc_id": body.bc_id},
        )
    bc_id = body.bc_id
    if body.advertiser_id or body.store_id or body.auto_sync_products:
        bc_id = await check_pair(
            session,
            workspace_id,
            auth_id,
            advertiser_id=body.advertiser_id,
            store_id=body.store_id,
            bc_id=body.bc_id,
        )

    config = await repository.config_of(session, workspace_id, auth_id)
    if config is None:
        config = GmvMaxBindingConfig(workspace_id=workspace_id, auth_id=auth_id)
        session.add(config)
    config.bc_id = bc_id
    config.advertiser_id = body.advertiser_id
    config.store_id = body.store_id
    config.eligibility = body.eligibility
    config.auto_sync_products = body.auto_sync_products
    config.auto_sync_interval_seconds = body.auto_sync_interval_seconds
    config.updated_by_user_id = access.user_id
    await session.flush()
    await apply_auto_sync_config(
        session,
        config,
        min_interval_seconds=settings.product_auto_sync_min_interval_seconds,
    )
    audit.record(
        session,
        action="config.updated",
        actor=access.actor,
        workspace_id=workspace_id,
        target_type="binding",
        target_id=auth_id,
        details=body.model_dump(),
    )
    return config_out(auth_id, config)
