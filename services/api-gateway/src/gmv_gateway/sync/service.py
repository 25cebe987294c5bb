"""Sync requests with the GMV Max validation, and the run records of a binding.

Validation of a product sync, in order, with stable codes: advertiser given
(``ADVERTISER_REQUIRED_FOR_GMV_MAX``), store given (``STORE_ID_REQUIRED_FOR_GMV_MAX``), advertiser
known (``ADVERTISER_NOT_FOUND``), store known (``STORE_NOT_FOUND``), the advertiser may use the
store (``ADVERTISER_NOT_LINKED_TO_STORE``), the business center agrees with both
(``BC_MISMATCH_BETWEEN_ADVERTISER_AND_STORE``). Then the run guards of ``gmv_common.sync.runs``:
join (or 409 ``SYNC_IN_PROGRESS``), cool-down (429 ``SYNC_RATE_LIMITED``), idempotency.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.bindings import STATUS_ACTIVE
from gmv_common.db.models import Binding, SyncRun
from gmv_common.errors import ConflictError, NotFoundError, ValidationFailedError
from gmv_common.logging import get_context
from gmv_common.settings import Settings
from gmv_common.sync.runs import RunRequest, request_meta_sync, request_product_sync
from gmv_gateway import audit
from gmv_gateway.bindings.service import require_binding
from gmv_gateway.catalog import repository as catalog
from gmv_gateway.dependencies import WorkspaceAccess
from gmv_gateway.pagination import PageParams
from gmv_gateway.sync import repository
from gmv_gateway.sync.schemas import SyncRequestIn


@dataclass(frozen=True, slots=True)
class ProductTarget:
    advertiser_id: str
    store_id: str
    bc_id: str | None
    eligibility: str


def require_usable(binding: Binding) -> None:
    if binding.status != STATUS_ACTIVE:
        raise ConflictError(
            "the TikTok account must be re-authorized before it can sync",
            code="BINDING_NEEDS_REAUTH",
            details={"status": binding.status, "reason": binding.status_reason},
        )


async def check_pair(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    advertiser_id: str | None,
    store_id: str | None,
    bc_id: str | None,
) -> str | None:
    """Validate an advertiser/store pair (and center); return the center to sync with."""
    if not advertiser_id:
        raise ValidationFailedError(
            "GMV Max needs an advertiser_id", code="ADVERTISER_REQUIRED_FOR_GMV_MAX"
        )
    if not store_id:
        raise ValidationFailedError(
            "GMV Max needs a store_id", code="STORE_ID_REQUIRED_FOR_GMV_MAX"
        )
    advertiser = await catalog.advertiser(session, workspace_id, auth_id, advertiser_id)
    if advertiser is None:
        raise NotFoundError(
            "advertiser not found in this account",
            code="ADVERTISER_NOT_FOUND",
            details={"advertiser_id": advertiser_id},
        )
    store = await catalog.store(session, workspace_id, auth_id, store_id)
    if store is None:
        raise NotFoundError(
            "store not found in this account",
            code="STORE_NOT_FOUND",
            details={"store_id": store_id},
        )
    link = await catalog.store_link(
        session, workspace_id, auth_id, advertiser_id, store_id
    )
    if link is None:
        raise ValidationFailedError(
            "this advertiser cannot use this store",
            code="ADVERTISER_NOT_LINKED_TO_STORE",
            details={"advertiser_id": advertiser_id, "store_id": store_id},
        )
    store_centers = {
        store.store_authorized_bc_id,
        store.bc_id,
        link.store_authorized_bc_id,
    }
    advertiser_centers = {
        advertiser.bc_id,
        advertiser.owner_bc_id,
        link.store_authorized_bc_id,
    } | await catalog.advertiser_bc_ids(session, workspace_id, auth_id, advertiser_id)
    store_centers.discard(None)
    advertiser_centers.discard(None)
    if bc_id is not None and (
        (store_centers and bc_id not in store_centers)
        or (advertiser_centers and bc_id not in advertiser_centers)
    ):
        raise ValidationFailedError(
            "the business center does not match the advertiser and the store",
            code="BC_MISMATCH_BETWEEN_ADVERTISER_AND_STORE",
            status_code=422,
            details={
                "bc_id": bc_id,
                "store_bc_ids": sorted(c for c in store_centers if c),
                "advertiser_bc_ids": sorted(c for c in advertiser_centers if c),
            },
        )
    return (
        bc_id
        or link.store_authorized_bc_id
        or store.store_authorized_bc_id
        or store.bc_id
        or advertiser.bc_id
    )


async def request_sync(
    session: AsyncSession,
    settings: Settings,
    access: WorkspaceAccess,
    auth_id: int,
    body: SyncRequestIn,
    *,
    idempotency_key: str | None,
) -> RunRequest:
    binding = await require_binding(session, access.workspace_id, auth_id)
    require_usable(binding)
    key = idempotency_key or body.idempotency_key
    correlation_id = get_context().get("correlation_id")
    if body.scope == "meta":
        result = await request_meta_sync(
            session,
            workspace_id=access.workspace_id,
            auth_id=auth_id,
            trigger="manual",
            topic_prefix=settings.kafka_topic_prefix,
            mode=body.mode,
            idempotency_key=key,
            user_id=access.user_id,
            correlation_id=correlation_id,
        )
        if result.reason == "active" and body.if_active == "conflict":
            raise ConflictError(
                "a metadata sync of this account is already in progress",
                code="SYNC_IN_PROGRESS",
                details={"run_id": result.run.id, "status": result.run.status},
            )
    else:
        target = await _product_target(session, access, auth_id, body)
        result = await request_product_sync(
            session,
            workspace_id=access.workspace_id,
            auth_id=auth_id,
            advertiser_id=target.advertiser_id,
            store_id=target.store_id,
            bc_id=target.bc_id,
            eligibility=target.eligibility,
            trigger="manual",
            topic_prefix=settings.kafka_topic_prefix,
            mode=body.mode,
            idempotency_key=key,
            user_id=access.user_id,
            correlation_id=correlation_id,
            on_active=body.if_active,
            cooldown_seconds=settings.product_sync_cooldown_seconds,
        )
        _check_same_request(result, target)
    if result.created:
        audit.record(
            session,
            action="sync.requested",
            actor=access.actor,
            workspace_id=access.workspace_id,
            target_type="sync_run",
            target_id=result.run.id,
            details={"auth_id": auth_id, "scope": body.scope, "mode": body.mode},
        )
    return result


async def _product_target(
    session: AsyncSession, access: WorkspaceAccess, auth_id: int, body: SyncRequestIn
) -> ProductTarget:
    options = body.options
    advertiser_id = options.advertiser_id or body.advertiser_id
    store_id = options.store_id or body.store_id
    bc_id = options.bc_id or body.bc_id
    resolved_bc = await check_pair(
        session,
        access.workspace_id,
        auth_id,
        advertiser_id=advertiser_id,
        store_id=store_id,
        bc_id=bc_id,
    )
    # check_pair refused a missing advertiser or store above.
    assert advertiser_id is not None
    assert store_id is not None
    return ProductTarget(
        advertiser_id=advertiser_id,
        store_id=store_id,
        bc_id=resolved_bc,
        eligibility=options.eligibility or body.product_eligibility or "gmv_max",
    )


def _check_same_request(result: RunRequest, target: ProductTarget) -> None:
    """An idempotency key names one request; reusing it for another pair is a conflict."""
    if result.reason != "idempotency_key":
        return
    params = result.run.params or {}
    same = (
        params.get("advertiser_id") == target.advertiser_id
        and params.get("store_id") == target.store_id
        and params.get("eligibility", "gmv_max") == target.eligibility
    )
    if not same:
        raise ConflictError(
            "this idempotency key was used for another sync request",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"run_id": result.run.id},
        )


async def get_run(
    session: AsyncSession, workspace_id: int, auth_id: int, run_id: int
) -> SyncRun:
    await require_binding(session, workspace_id, auth_id)
    run = await repository.run_of(session, workspace_id, auth_id, run_id)
    if run is None:
        raise NotFoundError("sync run not found", details={"resource": "sync_run"})
    return run


async def list_runs(
    session: AsyncSession,
    workspace_id: int,
    auth_id: int,
    *,
    scope: str | None,
    status: str | None,
    trigger: str | None,
    paging: PageParams,
) -> tuple[list[SyncRun], int]:
    await require_binding(session, workspace_id, auth_id)
    rows, total = await repository.runs_page(
        session,
        workspace_id,
        auth_id,
        scope=scope,
        status=status,
        trigger=trigger,
        offset=paging.offset,
        limit=paging.page_size,
    )
    return list(rows), total
