"""Factories and helpers of the gateway tests (keyword-only, each commits its rows)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx

from gmv_common.bindings import seal_access_token, seal_app_secret
from gmv_common.db.base import utcnow
from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    GmvMaxOptions,
    Product,
    ProductEligibility,
    ProviderApp,
    Schedule,
    Store,
    SyncRun,
    User,
    Workspace,
)
from gmv_common.runtime import Runtime
from gmv_gateway.auth.service import create_api_token, hash_password
from gmv_gateway.workspaces.service import add_member, create_workspace
from gmv_options_cache.service import pack

API_BASE = "/api/v1/tenants"
PASSWORD = "correct horse battery"
_counter = itertools.count(1)
# argon2 is slow on purpose: hash the shared test password once per run.
PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class Tenant:
    """A workspace with an owner, an admin and a member, each with an API token."""

    workspace: Workspace
    owner: User
    admin: User
    member: User
    owner_token: str
    admin_token: str
    member_token: str

    @property
    def id(self) -> int:
        return self.workspace.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("gmv_csrf") or ""}


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    )


class Seed:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def user(
        self, *, email: str | None = None, platform_admin: bool = False
    ) -> User:
        async with self.runtime.sessionmaker.begin() as session:
            user = User(
                email=email or f"user{next(_counter)}@example.test",
                password_hash=PASSWORD_HASH,
                is_platform_admin=platform_admin,
                is_active=True,
            )
            session.add(user)
        return user

    async def token(self, *, user: User) -> str:
        async with self.runtime.sessionmaker.begin() as session:
            _, plaintext = await create_api_token(session, user_id=user.id, name="test")
        return plaintext

    async def tenant(self, *, name: str = "Agency") -> Tenant:
        owner = await self.user()
        admin = await self.user()
        member = await self.user()
        async with self.runtime.sessionmaker.begin() as session:
            workspace = await create_workspace(
                session, name=name, owner_user_id=owner.id
            )
            await add_member(
                session, workspace_id=workspace.id, user_id=admin.id, role="admin"
            )
            await add_member(
                session, workspace_id=workspace.id, user_id=member.id, role="member"
            )
        return Tenant(
            workspace=workspace,
            owner=owner,
            admin=admin,
            member=member,
            owner_token=await self.token(user=owner),
            admin_token=await self.token(user=admin),
            member_token=await self.token(user=member),
        )

    async def provider_app(
        self,
        *,
        app_id: str | None = None,
        secret: str = "app-secret",
        api_base_url: str = "http://sandbox/open_api/v1.3/",
        is_default: bool = True,
    ) -> ProviderApp:
        app_id = app_id or f"7{next(_counter):018d}"
        async with self.runtime.sessionmaker.begin() as session:
            app = ProviderApp(
                app_id=app_id,
                name="Test app",
                redirect_uri="http://api.test/api/oauth/tiktok-business/callback",
                api_base_url=api_base_url,
                qps_limit=10.0,
                is_default=is_default,
            )
            seal_app_secret(app, self.runtime.keyring, secret)
            session.add(app)
        return app

    async def binding(
        self,
        *,
        workspace_id: int,
        app: ProviderApp,
        access_token: str | None = None,
        status: str = "active",
        alias: str | None = None,
    ) -> Binding:
        token = access_token or f"token-{next(_counter)}"
        async with self.runtime.sessionmaker.begin() as session:
            binding = Binding(
                workspace_id=workspace_id,
                provider_app_id=app.id,
                alias=alias,
                status=status,
            )
            seal_access_token(binding, self.runtime.keyring, token)
            session.add(binding)
        return binding

    async def catalog(self, *, binding: Binding) -> dict[str, Any]:
        """Two centers, three advertisers, two stores, products and links.

        bc-1 owns adv-1 and adv-2 and is authorized for store-1; bc-2 owns adv-3 and is
        authorized for store-2. adv-1 and adv-2 use store-1, adv-3 uses store-2.
        """
        ws, auth = binding.workspace_id, binding.id
        now = utcnow()
        rows: list[Any] = [
            BusinessCenter(workspace_id=ws, auth_id=auth, bc_id="bc-1", name="Alpha"),
            BusinessCenter(workspace_id=ws, auth_id=auth, bc_id="bc-2", name="Beta"),
            BusinessCenter(
                workspace_id=ws,
                auth_id=auth,
                bc_id="bc-gone",
                name="Gone",
                deleted_at=now,
            ),
        ]
        for adv, bc in (("adv-1", "bc-1"), ("adv-2", "bc-1"), ("adv-3", "bc-2")):
            rows.append(
                Advertiser(
                    workspace_id=ws,
                    auth_id=auth,
                    advertiser_id=adv,
                    bc_id=bc,
                    owner_bc_id=bc,
                    name=f"Advertiser {adv}",
                    raw_json={"advertiser_id": adv},
                )
            )
            rows.append(
                BcAdvertiserLink(
                    workspace_id=ws,
                    auth_id=auth,
                    bc_id=bc,
                    advertiser_id=adv,
                    relation="owner",
                    source="advertiser.info",
                )
            )
        for store, bc in (("store-1", "bc-1"), ("store-2", "bc-2")):
            rows.append(
                Store(
                    workspace_id=ws,
                    auth_id=auth,
                    store_id=store,
                    name=f"Store {store}",
                    store_authorized_bc_id=bc,
                    bc_id=bc,
                    status="ACTIVE",
                )
            )
        for adv, store, bc in (
            ("adv-1", "store-1", "bc-1"),
            ("adv-2", "store-1", "bc-1"),
            ("adv-3", "store-2", "bc-2"),
        ):
            rows.append(
                AdvertiserStoreLink(
                    workspace_id=ws,
                    auth_id=auth,
                    advertiser_id=adv,
                    store_id=store,
                    store_authorized_bc_id=bc,
                )
            )
        for index in range(5):
            rows.append(
                Product(
                    workspace_id=ws,
                    auth_id=auth,
                    store_id="store-1",
                    item_group_id=f"p-{index}",
                    title=f"Product {'EDCBA'[index]}",
                    min_price=Decimal(10 + index),
                    max_price=Decimal(20 + index),
                    currency="USD",
                    historical_sales=index * 10,
                    status="AVAILABLE" if index % 2 == 0 else "NOT_AVAILABLE",
                    raw_json={"item_group_id": f"p-{index}"},
                    deleted_at=now if index == 4 else None,
                )
            )
            if index < 2:
                rows.append(
                    ProductEligibility(
                        workspace_id=ws,
                        auth_id=auth,
                        store_id="store-1",
                        advertiser_id="adv-1",
                        eligibility="gmv_max",
                        item_group_id=f"p-{index}",
                    )
                )
        async with self.runtime.sessionmaker.begin() as session:
            session.add_all(rows)
        return {"business_centers": 2, "advertisers": 3, "stores": 2, "products": 4}

    async def options_document(
        self, *, binding: Binding, document: bytes, etag: str, version: int = 1
    ) -> None:
        async with self.runtime.sessionmaker.begin() as session:
            session.add(
                GmvMaxOptions(
                    workspace_id=binding.workspace_id,
                    auth_id=binding.id,
                    document=pack(document),
                    etag=etag,
                    version=version,
                )
            )

    async def schedule(
        self, *, binding: Binding, task_kind: str = "ttb.sync.meta"
    ) -> None:
        async with self.runtime.sessionmaker.begin() as session:
            session.add(
                Schedule(
                    workspace_id=binding.workspace_id,
                    auth_id=binding.id,
                    task_kind=task_kind,
                    params={},
                    interval_seconds=1800,
                    next_fire_at=utcnow() + timedelta(minutes=30),
                )
            )

    async def run(
        self,
        *,
        binding: Binding,
        scope: str = "meta",
        status: str = "succeeded",
        trigger: str = "manual",
        age: timedelta = timedelta(minutes=1),
    ) -> SyncRun:
        async with self.runtime.sessionmaker.begin() as session:
            run = SyncRun(
                workspace_id=binding.workspace_id,
                auth_id=binding.id,
                scope=scope,
                task_kind=f"ttb.sync.{scope}",
                trigger=trigger,
                status=status,
                params={},
                target_key=f"{scope}:{binding.workspace_id}:{binding.id}:seeded",
                idempotency_key=f"seed-{next(_counter)}",
                created_at=utcnow() - age,
            )
            session.add(run)
        return run
