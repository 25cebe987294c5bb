"""The caller's login sessions: list, revoke one, revoke all the others."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from gateway_support import Seed, bearer, csrf_headers, login
from sqlalchemy import select

from gmv_common.db.base import utcnow
from gmv_common.db.models import AuditLogEntry, User, UserSession
from gmv_common.runtime import Runtime

SESSIONS = "/api/v1/auth/sessions"

ClientFactory = Callable[..., Any]


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[ClientFactory]:
    """Opens more clients on the same app: each one is a browser with its own cookies."""
    async with AsyncExitStack() as stack:

        async def open_browser(user_agent: str = "test-browser") -> httpx.AsyncClient:
            return await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://api.test",
                    headers={"User-Agent": user_agent},
                )
            )

        yield open_browser


async def _logged_in(
    browser: ClientFactory, user: User, user_agent: str = "test-browser"
) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await browser(user_agent)
    response = await login(client, user.email)
    assert response.status_code == 200
    return client


async def _current_session_id(client: httpx.AsyncClient) -> int:
    listed = await client.get(SESSIONS)
    return next(item["id"] for item in listed.json()["items"] if item["current"])


async def _audit_actions(runtime: Runtime) -> list[str]:
    async with runtime.sessionmaker() as session:
        return list((await session.scalars(select(AuditLogEntry.action))).all())


async def test_list_shows_active_sessions_newest_first_and_marks_the_current_one(
    browser: ClientFactory, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()
    laptop = await _logged_in(browser, user, "Laptop/1.0")
    ended = await _logged_in(browser, user, "Ended/1.0")
    await ended.post("/api/v1/auth/logout", headers=csrf_headers(ended))
    stale = await _logged_in(browser, user, "Stale/1.0")
    stale_id = await _current_session_id(stale)
    async with runtime.sessionmaker.begin() as session:
        row = await session.get(UserSession, stale_id)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    phone = await _logged_in(browser, user, "Phone/2.0")

    response = await phone.get(SESSIONS)

    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["user_agent"] for item in items] == ["Phone/2.0", "Laptop/1.0"]
    assert [item["current"] for item in items] == [True, False]
    assert items[0]["ip"] == "127.0.0.1"
    assert items[0]["created_at"] >= items[1]["created_at"]
    assert set(items[0]) == {
        "id",
        "created_at",
        "last_seen_at",
        "expires_at",
        "ip",
        "user_agent",
        "current",
    }
    assert (await laptop.get(SESSIONS)).json()["items"][1]["current"] is True


async def test_list_with_an_api_token_marks_no_session_current(
    client: httpx.AsyncClient, browser: ClientFactory, seed: Seed
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)
    await _logged_in(browser, user)

    response = await client.get(SESSIONS, headers=bearer(token))

    assert response.status_code == 200
    assert [item["current"] for item in response.json()["items"]] == [False]


async def test_list_shows_only_the_callers_sessions(
    browser: ClientFactory, seed: Seed
) -> None:
    alice = await seed.user()
    bob = await seed.user()
    alice_client = await _logged_in(browser, alice)
    await _logged_in(browser, bob)

    response = await alice_client.get(SESSIONS)

    assert len(response.json()["items"]) == 1


async def test_sessions_need_authentication(client: httpx.AsyncClient) -> None:
    listed = await client.get(SESSIONS)
    revoked = await client.delete(f"{SESSIONS}/1")
    others = await client.post(f"{SESSIONS}/revoke-others")

    for response in (listed, revoked, others):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_revoked_session_stops_working_at_once(
    browser: ClientFactory, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()
    laptop = await _logged_in(browser, user)
    phone = await _logged_in(browser, user)
    laptop_id = await _current_session_id(laptop)
    # A read fills this process's access cache; revoking must clear it.
    assert (await laptop.get("/api/v1/auth/me")).status_code == 200

    response = await phone.delete(
        f"{SESSIONS}/{laptop_id}", headers=csrf_headers(phone)
    )
    after = await laptop.get("/api/v1/auth/me")
    phone_after = await phone.get(SESSIONS)

    assert response.status_code == 204
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "SESSION_EXPIRED"
    assert [item["current"] for item in phone_after.json()["items"]] == [True]
    assert "auth.session_revoked" in await _audit_actions(runtime)


async def test_revoking_the_current_session_logs_out_and_clears_cookies(
    browser: ClientFactory, seed: Seed
) -> None:
    user = await seed.user()
    laptop = await _logged_in(browser, user)
    cookie = laptop.cookies["gmv_session"]
    laptop_id = await _current_session_id(laptop)

    response = await laptop.delete(
        f"{SESSIONS}/{laptop_id}", headers=csrf_headers(laptop)
    )
    laptop.cookies.set("gmv_session", cookie)
    replay = await laptop.get("/api/v1/auth/me")

    assert response.status_code == 204
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith('gmv_session=""') for c in cleared)
    assert any(c.startswith('gmv_csrf=""') for c in cleared)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "SESSION_EXPIRED"


async def test_revoking_an_already_revoked_session_is_204(
    client: httpx.AsyncClient, browser: ClientFactory, seed: Seed
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)
    laptop = await _logged_in(browser, user)
    laptop_id = await _current_session_id(laptop)

    first = await client.delete(f"{SESSIONS}/{laptop_id}", headers=bearer(token))
    second = await client.delete(f"{SESSIONS}/{laptop_id}", headers=bearer(token))

    assert first.status_code == second.status_code == 204


async def test_another_users_session_is_404_like_a_missing_one(
    client: httpx.AsyncClient, browser: ClientFactory, seed: Seed
) -> None:
    alice = await seed.user()
    bob = await seed.user()
    alice_token = await seed.token(user=alice)
    bob_client = await _logged_in(browser, bob)
    bob_session_id = await _current_session_id(bob_client)

    foreign = await client.delete(
        f"{SESSIONS}/{bob_session_id}", headers=bearer(alice_token)
    )
    missing = await client.delete(f"{SESSIONS}/999999", headers=bearer(alice_token))
    bob_after = await bob_client.get("/api/v1/auth/me")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == "NOT_FOUND"
    assert foreign.json() == missing.json()
    assert bob_after.status_code == 200


async def test_session_id_must_be_a_number(
    client: httpx.AsyncClient, seed: Seed
) -> None:
    user = await seed.user()
    token = await seed.token(user=user)

    response = await client.delete(f"{SESSIONS}/current", headers=bearer(token))

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "VALIDATION_FAILED"


async def test_cookie_writes_on_sessions_need_the_csrf_token(
    browser: ClientFactory, seed: Seed
) -> None:
    user = await seed.user()
    laptop = await _logged_in(browser, user)
    phone = await _logged_in(browser, user)
    laptop_id = await _current_session_id(laptop)

    revoke = await phone.delete(f"{SESSIONS}/{laptop_id}")
    others = await phone.post(
        f"{SESSIONS}/revoke-others", headers={"X-CSRF-Token": "wrong"}
    )
    laptop_after = await laptop.get("/api/v1/auth/me")

    for response in (revoke, others):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "CSRF_FAILED"
    assert laptop_after.status_code == 200


async def test_revoke_others_keeps_the_current_session(
    browser: ClientFactory, seed: Seed, runtime: Runtime
) -> None:
    user = await seed.user()
    laptop = await _logged_in(browser, user)
    tablet = await _logged_in(browser, user)
    phone = await _logged_in(browser, user)
    for other in (laptop, tablet):
        assert (await other.get("/api/v1/auth/me")).status_code == 200

    response = await phone.post(
        f"{SESSIONS}/revoke-others", headers=csrf_headers(phone)
    )
    listed = await phone.get(SESSIONS)

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert [item["current"] for item in listed.json()["items"]] == [True]
    for other in (laptop, tablet):
        after = await other.get("/api/v1/auth/me")
        assert after.status_code == 401
        assert after.json()["error"]["code"] == "SESSION_EXPIRED"
    assert (await phone.get("/api/v1/auth/me")).status_code == 200
    assert "auth.sessions_revoked_others" in await _audit_actions(runtime)


async def test_revoke_others_with_an_api_token_revokes_every_session(
    client: httpx.AsyncClient, browser: ClientFactory, seed: Seed
) -> None:
    user = await seed.user()
    bystander = await seed.user()
    token = await seed.token(user=user)
    laptop = await _logged_in(browser, user)
    phone = await _logged_in(browser, user)
    bystander_client = await _logged_in(browser, bystander)

    response = await client.post(f"{SESSIONS}/revoke-others", headers=bearer(token))
    listed = await client.get(SESSIONS, headers=bearer(token))

    assert response.status_code == 200
    assert response.json() == {"revoked": 2}
    assert listed.json()["items"] == []
    for ended in (laptop, phone):
        assert (await ended.get("/api/v1/auth/me")).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=bearer(token))).is_success
    assert (await bystander_client.get("/api/v1/auth/me")).status_code == 200
