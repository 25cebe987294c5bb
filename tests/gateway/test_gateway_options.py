"""The options document: stored bytes, strong ETag, 304, pending, and refresh outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from event_support import publish_event
from gateway_support import API_BASE, Seed, Tenant, bearer
from sqlalchemy import select, update

from gmv_common.db.models import Binding, GmvMaxOptions, SyncRun
from gmv_common.events import OptionsUpdated
from gmv_common.runtime import Runtime
from gmv_gateway.options.service import accepts_gzip, etag_matches, with_keys
from gmv_gateway.options.waiter import OptionsWaiter, build_options_consumer
from gmv_options_cache.service import pack

IDENTITY = {"Accept-Encoding": "identity"}
DOCUMENT = b'{"advertisers":[],"bcs":[{"bc_id":"bc-1"}],"status":"active","version":1}'
ETAG = '"0123456789abcdef0123456789abcdef"'


async def _account(seed: Seed, *, status: str = "active") -> tuple[Tenant, Binding]:
    tenant = await seed.tenant()
    app = await seed.provider_app()
    binding = await seed.binding(workspace_id=tenant.id, app=app, status=status)
    return tenant, binding


def _path(tenant: Tenant, binding: Binding, spelling: str = "gmvmax") -> str:
    return (
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/"
        f"{binding.id}/{spelling}/options"
    )


async def test_stored_bytes_are_served_as_is_with_strong_etag(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    response = await client.get(
        _path(tenant, binding, "gmv-max"),
        headers={**bearer(tenant.member_token), **IDENTITY},
    )

    assert response.status_code == 200
    assert response.content == DOCUMENT
    assert response.headers["etag"] == ETAG
    assert response.headers["content-type"] == "application/json"
    assert "content-encoding" not in response.headers


async def test_gzip_clients_get_stored_compressed_bytes_under_own_tag(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)
    headers = {**bearer(tenant.member_token), "Accept-Encoding": "gzip"}

    response = await client.get(_path(tenant, binding), headers=headers)
    revalidated = await client.get(
        _path(tenant, binding), headers={**headers, "If-None-Match": ETAG}
    )

    assert response.headers["content-encoding"] == "gzip"
    assert response.content == DOCUMENT
    assert response.headers["etag"] == ETAG[:-1] + '-gzip"'
    assert "Accept-Encoding" in response.headers["vary"]
    assert revalidated.status_code == 304


@pytest.mark.parametrize(
    "if_none_match",
    [ETAG, f"W/{ETAG}", f'"other", {ETAG}', "*"],
)
async def test_if_none_match_forms_answer_304(
    client: httpx.AsyncClient, seed: Seed, if_none_match: str
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    response = await client.get(
        _path(tenant, binding),
        headers={
            **bearer(tenant.member_token),
            **IDENTITY,
            "If-None-Match": if_none_match,
        },
    )

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == ETAG


async def test_stale_etag_gets_the_document(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    response = await client.get(
        _path(tenant, binding),
        headers={**bearer(tenant.member_token), "If-None-Match": '"stale"'},
    )

    assert response.status_code == 200
    assert response.content == DOCUMENT


async def test_no_document_yet_answers_pending_shape_without_etag(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed)

    response = await client.get(
        _path(tenant, binding), headers=bearer(tenant.member_token)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["pending"] is True
    assert body["bcs"] == []
    assert body["links"]["advertiser_to_stores"] == {}
    assert "etag" not in response.headers


async def test_options_of_missing_account_is_404(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant = await seed.tenant()

    response = await client.get(
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/5555/gmvmax/options",
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 404


async def test_refresh_timeout_answers_current_document_with_run_and_key(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    first, second = await asyncio.gather(
        client.get(
            _path(tenant, binding),
            params={"refresh": 1},
            headers=bearer(tenant.member_token),
        ),
        client.get(
            _path(tenant, binding),
            params={"refresh": 1},
            headers=bearer(tenant.member_token),
        ),
    )

    body = first.json()
    assert first.status_code == 200
    assert body["refresh"] == "timeout"
    assert body["bcs"] == [{"bc_id": "bc-1"}]
    assert body["idempotency_key"]
    assert second.json()["run_id"] == body["run_id"]
    assert "etag" not in first.headers
    async with runtime.sessionmaker() as session:
        runs = (await session.scalars(select(SyncRun))).all()
    assert [(run.scope, run.trigger) for run in runs] == [("meta", "refresh")]


async def test_refresh_returns_new_document_once_it_is_stored(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)
    new_document = DOCUMENT.replace(b'"version":1', b'"version":2')

    async def options_cache_rebuilds() -> None:
        await asyncio.sleep(0.3)
        async with runtime.sessionmaker.begin() as session:
            await session.execute(
                update(GmvMaxOptions).values(document=pack(new_document), etag='"v2"')
            )
        event = OptionsUpdated(
            workspace_id=tenant.id, auth_id=binding.id, etag='"v2"', version=2
        )
        await publish_event(runtime, event)

    response, _ = await asyncio.gather(
        client.get(
            _path(tenant, binding),
            params={"refresh": 1},
            headers=bearer(tenant.member_token),
        ),
        options_cache_rebuilds(),
    )

    assert response.status_code == 200
    assert response.content == new_document
    assert response.headers["etag"] == '"v2-gzip"'
    assert response.headers["x-options-refresh"] == "updated"


async def test_refresh_reports_a_failed_run(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    async def worker_fails() -> None:
        await asyncio.sleep(0.3)
        async with runtime.sessionmaker.begin() as session:
            await session.execute(
                update(SyncRun).values(
                    status="failed", error_code="TOKEN_INVALID", active_key=None
                )
            )

    response, _ = await asyncio.gather(
        client.get(
            _path(tenant, binding),
            params={"refresh": 1},
            headers=bearer(tenant.member_token),
        ),
        worker_fails(),
    )

    assert response.json()["refresh"] == "failed"
    assert response.json()["error_code"] == "TOKEN_INVALID"


async def test_refresh_wait_holds_no_database_connection(
    client: httpx.AsyncClient, seed: Seed, runtime: Runtime
) -> None:
    tenant, binding = await _account(seed)
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)

    request = asyncio.create_task(
        client.get(
            _path(tenant, binding),
            params={"refresh": 1},
            headers=bearer(tenant.member_token),
        )
    )
    await asyncio.sleep(0.2)
    pool: Any = runtime.engine.pool
    samples = []
    for _ in range(12):
        samples.append(pool.checkedout())
        await asyncio.sleep(0.04)
    response = await request

    assert response.json()["refresh"] == "timeout"
    # Only the short polls touch the pool; nothing stays checked out across the wait.
    assert min(samples) == 0
    assert max(samples) <= 1


async def test_refresh_of_account_needing_reauth_is_409(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, binding = await _account(seed, status="needs_reauth")

    response = await client.get(
        _path(tenant, binding),
        params={"refresh": 1},
        headers=bearer(tenant.member_token),
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "BINDING_NEEDS_REAUTH"


async def test_waiter_is_woken_by_options_updated_events(runtime: Runtime) -> None:
    waiter = OptionsWaiter()
    stop = asyncio.Event()
    consumer = asyncio.create_task(build_options_consumer(runtime, waiter).run(stop))
    event = OptionsUpdated(workspace_id=3, auth_id=9, etag='"e"', version=4)

    with waiter.subscribe(3, 9) as woken, waiter.subscribe(3, 10) as other:
        await publish_event(runtime, event)
        await asyncio.wait_for(woken.wait(), timeout=5)
        assert not other.is_set()
    stop.set()
    await consumer

    assert waiter.waiting_count() == 0


def test_keys_are_appended_without_reserializing() -> None:
    extended = with_keys(DOCUMENT, {"refresh": "timeout", "run_id": 3})

    assert extended.startswith(DOCUMENT[:-1])
    assert orjson.loads(extended)["refresh"] == "timeout"
    assert orjson.loads(with_keys(b"{}", {"a": 1})) == {"a": 1}


def test_gzip_acceptance_respects_zero_quality() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("identity")
    assert not accepts_gzip(None)


def test_etag_comparison_is_weak_and_list_aware() -> None:
    assert etag_matches('W/"a", "b"', '"a"')
    assert etag_matches("*", '"a"')
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches(None, '"a"')
