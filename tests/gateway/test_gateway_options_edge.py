"""The options hot path: cached answers identical to the endpoint's, and when it steps aside.

``OptionsEdge.answer`` is wrapped to record whether each request was answered from the
caches; the endpoint's answer for the same request is obtained with the caches emptied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from event_support import publish_event
from gateway_support import API_BASE, Seed, Tenant, bearer
from sqlalchemy import Executable, delete, update
from starlette.types import Receive, Scope, Send

from gmv_common.db.base import utcnow
from gmv_common.db.models import ApiToken, Binding, GmvMaxOptions, Membership
from gmv_common.events import OptionsUpdated
from gmv_gateway.auth.cache import TTLCache
from gmv_gateway.dependencies import AccessCaches, Credential, refresh_access
from gmv_gateway.options.cache import CachedDocument, DocumentCache
from gmv_gateway.options.edge import (
    MAX_ANSWERS_PER_DOCUMENT,
    REFRESH_AHEAD_SECONDS,
    OptionsEdge,
)
from gmv_options_cache.service import pack

DOCUMENT = b'{"advertisers":[],"bcs":[{"bc_id":"bc-1"}],"status":"active","version":1}'
ETAG = '"00112233445566778899aabbccddeeff"'
ORIGIN = "http://spa.test"


@pytest.fixture
def edge_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    answers: list[bool] = []
    original = OptionsEdge.answer

    async def recording(
        self: OptionsEdge, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        answered = await original(self, scope, receive, send)
        answers.append(answered)
        return answered

    monkeypatch.setattr(OptionsEdge, "answer", recording)
    return answers


async def _document(seed: Seed) -> tuple[Tenant, Binding, str]:
    tenant = await seed.tenant()
    binding = await seed.binding(workspace_id=tenant.id, app=await seed.provider_app())
    await seed.options_document(binding=binding, document=DOCUMENT, etag=ETAG)
    path = (
        f"{API_BASE}/{tenant.id}/providers/tiktok-business/accounts/"
        f"{binding.id}/gmvmax/options"
    )
    return tenant, binding, path


def _forget_everything(app: Any) -> None:
    app.options_cache = DocumentCache()
    app.access_caches.principals.clear()
    app.access_caches.roles.clear()


def _comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = [
        (name.lower(), "<id>" if name.lower() == "x-request-id" else value)
        for name, value in response.headers.multi_items()
    ]
    return response.status_code, response.content, headers


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("origin", [None, ORIGIN])
async def test_cached_answer_is_the_endpoints_answer(
    app: Any,
    client: httpx.AsyncClient,
    seed: Seed,
    edge_answers: list[bool],
    encoding: str,
    conditional: bool,
    origin: str | None,
) -> None:
    tenant, _, path = await _document(seed)
    headers = {**bearer(tenant.member_token), "Accept-Encoding": encoding}
    if conditional:
        served_tag = ETAG if encoding == "identity" else ETAG[:-1] + '-gzip"'
        headers["If-None-Match"] = served_tag
    if origin is not None:
        headers["Origin"] = origin

    _forget_everything(app)
    from_endpoint = await client.get(path, headers=headers)
    from_edge = await client.get(path, headers=headers)
    again = await client.get(path, headers=headers)

    assert edge_answers == [False, True, True]
    assert from_endpoint.status_code == (304 if conditional else 200)
    assert _comparable(from_edge) == _comparable(from_endpoint)
    assert _comparable(again) == _comparable(from_endpoint)
    assert from_edge.headers["x-request-id"] != from_endpoint.headers["x-request-id"]
    if origin is not None:
        assert from_edge.headers["access-control-allow-origin"] == ORIGIN
        assert from_edge.headers["access-control-allow-credentials"] == "true"


async def test_edge_keeps_the_callers_request_id(
    client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, _, path = await _document(seed)
    headers = bearer(tenant.member_token)
    await client.get(path, headers=headers)

    response = await client.get(path, headers={**headers, "X-Request-ID": "spa-42"})

    assert edge_answers == [False, True]
    assert response.headers["x-request-id"] == "spa-42"


async def test_edge_answers_are_measured_under_the_route_template(
    client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, _, path = await _document(seed)
    headers = {**bearer(tenant.member_token), "If-None-Match": ETAG}
    template = (
        "/api/v1/tenants/{workspace_id}/providers/{provider}/accounts/{auth_id}"
        "/gmvmax/options"
    )
    sample = (
        "gmv_http_request_duration_seconds_count"
        f'{{method="GET",route="{template}",status="304"}}'
    )

    def count(metrics: str) -> float:
        for line in metrics.splitlines():
            if line.startswith(sample):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    await client.get(path, headers=headers)
    before = count((await client.get("/metrics")).text)
    for _ in range(3):
        await client.get(path, headers=headers)
    after = count((await client.get("/metrics")).text)

    assert edge_answers.count(True) == 3
    assert after - before == 3


async def test_edge_steps_aside_for_what_it_cannot_answer(
    client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, _, path = await _document(seed)
    member = bearer(tenant.member_token)
    await client.get(path, headers=member)
    edge_answers.clear()

    wrong_provider = path.replace("tiktok-business", "tiktok-shop")
    other = await seed.tenant()
    answers = [
        await client.get(path, headers={"Authorization": "Basic abc"}),
        await client.get(path, headers=bearer("gmv_not-a-token")),
        await client.get(path),
        await client.get(wrong_provider, headers=member),
        await client.get(path, headers=bearer(other.member_token)),
        await client.get(path + "?refresh=0", headers=member),
        await client.head(path, headers=member),
    ]

    assert edge_answers == [False] * len(answers)
    assert [response.status_code for response in answers] == [
        401,
        401,
        401,
        404,
        404,
        200,
        405,
    ]
    assert answers[3].json()["error"]["code"] == "PROVIDER_NOT_SUPPORTED"


async def test_revoked_token_and_removed_member_stop_at_once(
    client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, _, path = await _document(seed)
    created = await client.post(
        "/api/v1/auth/tokens",
        json={"name": "poller"},
        headers=bearer(tenant.admin_token),
    )
    poller = bearer(created.json()["token"])
    member = bearer(tenant.member_token)
    edge_answers.clear()
    # The endpoint, then the edge twice: the second answer comes from the ready answer kept
    # for these exact request headers.
    for headers in (poller, member):
        for _ in range(3):
            assert (await client.get(path, headers=headers)).status_code == 200
    assert edge_answers == [False, True, True] * 2

    revoked = await client.delete(
        f"/api/v1/auth/tokens/{created.json()['id']}",
        headers=bearer(tenant.admin_token),
    )
    removed = await client.delete(
        f"{API_BASE}/{tenant.id}/members/{tenant.member.id}",
        headers=bearer(tenant.owner_token),
    )
    edge_answers.clear()
    after_revoke = await client.get(path, headers=poller)
    after_removal = await client.get(path, headers=member)

    assert (revoked.status_code, removed.status_code) == (204, 204)
    assert edge_answers == [False, False]
    assert after_revoke.status_code == 401
    assert after_removal.status_code == 404


def _document_named(etag: str) -> CachedDocument:
    return CachedDocument(etag=etag, body=b"{}", gzip_body=b"")


async def test_concurrent_misses_share_one_load() -> None:
    cache = DocumentCache(ttl=60)
    calls: list[CachedDocument | None] = []
    release = asyncio.Event()

    async def loader(stale: CachedDocument | None) -> CachedDocument:
        calls.append(stale)
        await release.wait()
        return _document_named('"a"')

    waiters = [asyncio.create_task(cache.load(1, 2, loader)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    documents = await asyncio.gather(*waiters)

    assert calls == [None]
    assert {document.etag for document in documents} == {'"a"'}
    assert cache.get(1, 2) is documents[0]


async def test_expired_entry_is_revalidated_and_served_while_it_is() -> None:
    cache = DocumentCache(ttl=0)
    first = _document_named('"a"')
    cache.put(1, 2, first)
    release = asyncio.Event()
    seen: list[CachedDocument | None] = []

    async def revalidate(stale: CachedDocument | None) -> CachedDocument | None:
        seen.append(stale)
        await release.wait()
        return stale

    assert cache.get(1, 2) is None
    loading = asyncio.create_task(cache.load(1, 2, revalidate))
    await asyncio.sleep(0)
    served_meanwhile = cache.get(1, 2)
    release.set()

    assert await loading is first
    assert seen == [first]
    assert served_meanwhile is first


async def test_load_started_before_an_invalidation_does_not_store() -> None:
    cache = DocumentCache(ttl=60)
    release = asyncio.Event()

    async def loader(stale: CachedDocument | None) -> CachedDocument:
        await release.wait()
        return _document_named('"old"')

    loading = asyncio.create_task(cache.load(1, 2, loader))
    await asyncio.sleep(0)
    cache.invalidate(1, 2)
    release.set()

    assert (await loading).etag == '"old"'
    assert cache.get(1, 2) is None


async def test_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache = DocumentCache(ttl=60)
    release = asyncio.Event()

    async def failing(stale: CachedDocument | None) -> CachedDocument:
        await release.wait()
        raise ConnectionError("database went away")

    waiters = [asyncio.create_task(cache.load(1, 2, failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)

    assert all(isinstance(result, ConnectionError) for result in results)
    assert cache.get(1, 2) is None
    recovered = await cache.load(1, 2, lambda stale: _ready(_document_named('"b"')))
    assert recovered is not None
    assert recovered.etag == '"b"'


async def _ready(document: CachedDocument) -> CachedDocument:
    return document


async def test_deleted_binding_stops_serving_its_cached_document(
    client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, _, path = await _document(seed)
    member = bearer(tenant.member_token)
    for _ in range(3):
        assert (await client.get(path, headers=member)).status_code == 200
    account = path.removesuffix("/gmvmax/options")

    deleted = await client.delete(account, headers=bearer(tenant.admin_token))
    edge_answers.clear()
    after = await client.get(path, headers=member)

    assert deleted.status_code == 204
    assert edge_answers == [False]
    assert after.status_code == 404


async def test_options_updated_replaces_a_ready_answer_at_once(
    app: Any, client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, binding, path = await _document(seed)
    member = {
        **bearer(tenant.member_token),
        "Accept-Encoding": "identity",
        "If-None-Match": ETAG,
    }
    for _ in range(3):
        assert (await client.get(path, headers=member)).status_code == 304
    new_etag = '"ffeeddccbbaa99887766554433221100"'
    async with seed.runtime.sessionmaker.begin() as session:
        await session.execute(
            update(GmvMaxOptions)
            .where(GmvMaxOptions.auth_id == binding.id)
            .values(document=pack(DOCUMENT.replace(b"bc-1", b"bc-2")), etag=new_etag)
        )
    await publish_event(
        seed.runtime,
        OptionsUpdated(
            workspace_id=tenant.id, auth_id=binding.id, etag=new_etag, version=2
        ),
    )
    for _ in range(100):
        if app.options_cache.stale(tenant.id, binding.id) is None:
            break
        await asyncio.sleep(0.01)
    edge_answers.clear()

    changed = await client.get(path, headers=member)

    assert edge_answers == [False]
    assert changed.status_code == 200
    assert changed.headers["etag"] == new_etag
    assert b"bc-2" in changed.content


# Entries that are due for a refresh 0.5 s after they were stored, and expire 1.5 s later.
SHORT_TTL = REFRESH_AHEAD_SECONDS + 0.5


def _short_lived_caches(app: Any) -> AccessCaches:
    caches = AccessCaches(
        principals=TTLCache(ttl=SHORT_TTL), roles=TTLCache(ttl=SHORT_TTL)
    )
    app.access_caches = caches
    app.options_cache = DocumentCache(ttl=0.2)
    return caches


async def _poll(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], seconds: float
) -> list[int]:
    """Poll as a page does, every 50 ms, for ``seconds``; the statuses in order."""
    statuses: list[int] = []
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        statuses.append((await client.get(path, headers=headers)).status_code)
        await asyncio.sleep(0.05)
    return statuses


async def test_polling_never_meets_an_expired_entry(
    app: Any, client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    # Without the background refreshes the caller's entries expire after SHORT_TTL and the
    # document after 0.2 s: requests would then go through the endpoint again.
    tenant, _, path = await _document(seed)
    _short_lived_caches(app)
    member = {**bearer(tenant.member_token), "If-None-Match": ETAG}
    await client.get(path, headers=member)
    edge_answers.clear()

    statuses = await _poll(client, path, member, 2.5 * SHORT_TTL)

    assert set(statuses) == {304}
    assert edge_answers == [True] * len(statuses)


async def test_document_changed_without_an_event_is_found_by_revalidation(
    app: Any, client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, binding, path = await _document(seed)
    _short_lived_caches(app)
    member = {**bearer(tenant.member_token), "Accept-Encoding": "identity"}
    await client.get(path, headers=member)
    new_etag = '"ffeeddccbbaa99887766554433221100"'
    async with seed.runtime.sessionmaker.begin() as session:
        await session.execute(
            update(GmvMaxOptions)
            .where(GmvMaxOptions.auth_id == binding.id)
            .values(etag=new_etag)
        )
    edge_answers.clear()

    etags = []
    for _ in range(40):
        etags.append((await client.get(path, headers=member)).headers["etag"])
        if etags[-1] == new_etag:
            break
        await asyncio.sleep(0.05)

    assert etags[-1] == new_etag
    assert set(etags[:-1]) <= {ETAG}
    assert all(edge_answers)


def _revoke_token(tenant: Tenant) -> Executable:
    return (
        update(ApiToken)
        .where(ApiToken.user_id == tenant.member.id)
        .values(revoked_at=utcnow())
    )


def _remove_member(tenant: Tenant) -> Executable:
    return delete(Membership).where(
        Membership.workspace_id == tenant.id,
        Membership.user_id == tenant.member.id,
    )


@pytest.mark.parametrize(
    ("change", "refused_with"),
    [(_revoke_token, 401), (_remove_member, 404)],
    ids=["token revoked", "member removed"],
)
async def test_access_withdrawn_by_another_process_stops_before_its_entry_expires(
    app: Any,
    client: httpx.AsyncClient,
    seed: Seed,
    change: Callable[[Tenant], Executable],
    refused_with: int,
) -> None:
    tenant, _, path = await _document(seed)
    _short_lived_caches(app)
    member = bearer(tenant.member_token)
    await client.get(path, headers=member)
    # Written to the database only, as another gateway process would: this process's
    # caches are not told.
    async with seed.runtime.sessionmaker.begin() as session:
        await session.execute(change(tenant))

    statuses = await _poll(client, path, member, SHORT_TTL)

    refused = statuses.index(refused_with)
    assert set(statuses[:refused]) <= {200}
    assert set(statuses[refused:]) == {refused_with}


async def test_refresh_that_read_before_a_local_revocation_does_not_restore_it(
    app: Any, client: httpx.AsyncClient, seed: Seed
) -> None:
    tenant, _, path = await _document(seed)
    member = bearer(tenant.member_token)
    await client.get(path, headers=member)
    caches: AccessCaches = app.access_caches
    credential = Credential(token=tenant.member_token)
    principal = caches.principals.get(credential.cache_key)
    assert principal is not None
    assert principal.token_id is not None

    refreshing = asyncio.create_task(
        refresh_access(seed.runtime, caches, credential, tenant.id, ip=None)
    )
    await asyncio.sleep(0)  # the refresh has started reading
    caches.forget_token(principal.token_id)
    await refreshing

    assert caches.principals.get(credential.cache_key) is None


async def test_remembered_answers_follow_each_requests_tags_and_stay_bounded(
    app: Any, client: httpx.AsyncClient, seed: Seed, edge_answers: list[bool]
) -> None:
    tenant, binding, path = await _document(seed)
    member = {**bearer(tenant.member_token), "Accept-Encoding": "identity"}
    await client.get(path, headers=member)
    edge_answers.clear()
    forms = {
        ETAG: 304,
        f"W/{ETAG}": 304,
        f'"other", {ETAG}': 304,
        "*": 304,
        '"other"': 200,
    }
    # Clients choose these values: past the bound the answers stay right, unremembered.
    forms |= {f'"stale-{index}"': 200 for index in range(2 * MAX_ANSWERS_PER_DOCUMENT)}

    statuses = {}
    for _ in range(2):
        for tag in forms:
            response = await client.get(path, headers={**member, "If-None-Match": tag})
            statuses[tag] = response.status_code

    assert statuses == forms
    assert all(edge_answers)
    cache: DocumentCache = app.options_cache
    document = cache.get(tenant.id, binding.id)
    assert document is not None
    assert len(document.answers) <= MAX_ANSWERS_PER_DOCUMENT
