"""Factories for the options-cache tests: write rows the way a metadata sync would.

Every factory takes keyword-only arguments, adds to the caller's session and flushes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.bus import topics
from gmv_common.db.base import utcnow
from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    OutboxMessage,
    ProviderApp,
    Store,
    Workspace,
)
from gmv_common.events.envelope import Envelope
from gmv_common.events.schemas import BindingChanged, EventModel, SyncCompleted


async def make_binding(
    session: AsyncSession,
    *,
    alias: str | None = "Main account",
    status: str = "active",
    workspace_id: int | None = None,
    last_meta_sync_at: datetime | None = None,
) -> Binding:
    if workspace_id is None:
        workspace = Workspace(name=f"ws-{uuid.uuid4().hex[:6]}")
        session.add(workspace)
        await session.flush()
        workspace_id = workspace.id
    app = ProviderApp(
        app_id=f"app-{uuid.uuid4().hex[:10]}",
        name="Test app",
        secret_cipher=b"cipher",
        key_version=1,
        redirect_uri="http://localhost/callback",
    )
    session.add(app)
    await session.flush()
    binding = Binding(
        workspace_id=workspace_id,
        provider_app_id=app.id,
        alias=alias,
        status=status,
        access_token_cipher=b"cipher",
        key_version=1,
        token_fingerprint=uuid.uuid4().hex,
        last_meta_sync_at=last_meta_sync_at,
    )
    session.add(binding)
    await session.flush()
    return binding


def _scope(binding: Binding) -> dict[str, int]:
    return {"workspace_id": binding.workspace_id, "auth_id": binding.id}


async def add_business_center(
    session: AsyncSession, *, binding: Binding, bc_id: str, name: str | None = None
) -> BusinessCenter:
    row = BusinessCenter(
        **_scope(binding),
        bc_id=bc_id,
        name=f"BC {bc_id}" if name is None else name,
        timezone="Asia/Singapore",
        country_code="SG",
        status="ENABLE",
    )
    session.add(row)
    await session.flush()
    return row


async def add_advertiser(
    session: AsyncSession,
    *,
    binding: Binding,
    advertiser_id: str,
    bc_id: str | None,
    name: str | None = None,
) -> Advertiser:
    row = Advertiser(
        **_scope(binding),
        advertiser_id=advertiser_id,
        bc_id=bc_id,
        owner_bc_id=bc_id,
        name=f"Advertiser {advertiser_id}" if name is None else name,
        display_name=f"Advertiser {advertiser_id}" if name is None else name,
        status="STATUS_ENABLE",
        industry="Retail",
        currency="USD",
        timezone="Etc/GMT",
        display_timezone="UTC",
        country_code="US",
    )
    session.add(row)
    await session.flush()
    return row


async def add_store(
    session: AsyncSession,
    *,
    binding: Binding,
    store_id: str,
    bc_id: str | None,
    name: str | None = None,
    gmv_max_available: bool | None = True,
) -> Store:
    row = Store(
        **_scope(binding),
        store_id=store_id,
        name=f"Store {store_id}" if name is None else name,
        store_type="TIKTOK_SHOP",
        store_code=f"US{store_id[-6:]}",
        store_authorized_bc_id=bc_id,
        bc_id=bc_id,
        status="ACTIVE",
        gmv_max_available=gmv_max_available,
    )
    session.add(row)
    await session.flush()
    return row


async def link_bc_advertiser(
    session: AsyncSession, *, binding: Binding, bc_id: str, advertiser_id: str
) -> BcAdvertiserLink:
    row = BcAdvertiserLink(
        **_scope(binding),
        bc_id=bc_id,
        advertiser_id=advertiser_id,
        relation="partner",
        source="bc.advertiser",
    )
    session.add(row)
    await session.flush()
    return row


async def link_advertiser_store(
    session: AsyncSession, *, binding: Binding, advertiser_id: str, store_id: str
) -> AdvertiserStoreLink:
    row = AdvertiserStoreLink(
        **_scope(binding), advertiser_id=advertiser_id, store_id=store_id
    )
    session.add(row)
    await session.flush()
    return row


async def tombstone(session: AsyncSession, model: Any, **keys: Any) -> None:
    """Mark the matching rows deleted, as a sync does when upstream dropped them."""
    await session.execute(
        update(model)
        .where(*(getattr(model, name) == value for name, value in keys.items()))
        .values(deleted_at=utcnow())
    )


async def seed_small_graph(session: AsyncSession, binding: Binding) -> None:
    """Two centers, three advertisers, three stores and their links."""
    await add_business_center(session, binding=binding, bc_id="7001")
    await add_business_center(session, binding=binding, bc_id="7002")
    await add_advertiser(session, binding=binding, advertiser_id="6001", bc_id="7001")
    await add_advertiser(session, binding=binding, advertiser_id="6002", bc_id="7001")
    await add_advertiser(session, binding=binding, advertiser_id="6003", bc_id="7002")
    await add_store(session, binding=binding, store_id="8001", bc_id="7001")
    await add_store(session, binding=binding, store_id="8002", bc_id="7001")
    await add_store(session, binding=binding, store_id="8003", bc_id="7002")
    await link_bc_advertiser(
        session, binding=binding, bc_id="7002", advertiser_id="6002"
    )
    for advertiser_id, store_id in (
        ("6001", "8001"),
        ("6001", "8002"),
        ("6002", "8002"),
        ("6003", "8003"),
    ):
        await link_advertiser_store(
            session, binding=binding, advertiser_id=advertiser_id, store_id=store_id
        )


def meta_sync_completed(
    binding: Binding, *, run_id: int, finished_at: datetime | None = None
) -> SyncCompleted:
    return SyncCompleted(
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
        run_id=run_id,
        scope="meta",
        mode="full",
        trigger="manual",
        status="succeeded",
        finished_at=finished_at or utcnow(),
    )


def binding_changed(
    binding: Binding, *, change: str, alias: str | None = None
) -> BindingChanged:
    return BindingChanged.model_validate(
        {
            "workspace_id": binding.workspace_id,
            "auth_id": binding.id,
            "change": change,
            "alias": alias,
        }
    )


def envelope_of(event: EventModel) -> Envelope:
    return Envelope(
        type=event.event_type,
        source="/gmv/tests",
        subject=event.subject,
        data=event.model_dump(mode="json"),
    )


async def options_updated_count(session: AsyncSession, *, auth_id: int) -> int:
    """OptionsUpdated events written to the outbox for one binding."""
    payloads = await session.scalars(
        select(OutboxMessage.payload).where(
            OutboxMessage.topic.like(f"%.{topics.OPTIONS_EVENTS}")
        )
    )
    return sum(1 for payload in payloads if orjson.loads(payload)["auth_id"] == auth_id)
