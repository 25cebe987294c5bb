"""Security over the running processes: sessions, CSRF, throttling, OAuth state and redirects,
secrets kept out of logs, error bodies and events, tokens encrypted at rest and rotated.

Tenant isolation on every route is proven in-process by
``tests/gateway/test_gateway_tenancy.py::test_every_route_hides_other_tenants_workspace_and_objects``
(every route enumerated from the app); here one synced binding of another tenant is probed
over HTTP against the MariaDB-backed gateway process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from e2e_support import (
    GMV,
    SANDBOX_APP_ID,
    SANDBOX_APP_SECRET,
    USER_PASSWORD,
    Stack,
    Tenant,
    read_topics,
    wait_until,
)

from gmv_common.bus import topics

pytestmark = [pytest.mark.e2e, pytest.mark.mariadb, pytest.mark.kafka]

# How long a gateway process may keep serving reads to a caller it has cached.
CALLER_CACHE_SECONDS = 5


async def _login(stack: Stack, email: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=stack.gateway_url, timeout=30)
    answer = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return client


def _csrf(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies.get("gmv_csrf") or ""}


async def test_session_cookie_needs_csrf_for_writes_and_ends_on_logout_or_expiry(
    stack: Stack,
) -> None:
    tenant = await stack.bootstrap_tenant(name="Session agency")
    client = await _login(stack, tenant.email, USER_PASSWORD)
    try:
        no_csrf = await client.post("/api/v1/auth/tokens", json={"name": "x"})
        with_csrf = await client.post(
            "/api/v1/auth/tokens", json={"name": "x"}, headers=_csrf(client)
        )
        session_id = client.cookies.get("gmv_session") or ""
        await client.post("/api/v1/auth/logout", headers=_csrf(client))
        # The browser drops the cookie; a stolen copy must be refused by the server too.
        client.cookies.set("gmv_session", session_id)
        after_logout = await client.get("/api/v1/auth/me")
    finally:
        await client.aclose()
    expiring = await _login(stack, tenant.email, USER_PASSWORD)
    try:
        assert (await expiring.get("/api/v1/auth/me")).status_code == 200
        async with stack.engine.begin() as connection:
            await connection.exec_driver_sql(
                "UPDATE sessions SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND "
                f"WHERE user_id = {tenant.user_id} AND revoked_at IS NULL"
            )

        async def refused() -> httpx.Response | None:
            answer = await expiring.get("/api/v1/auth/me")
            return answer if answer.status_code != 200 else None

        # Reads may be served from the gateway's caller cache for its TTL (5 s).
        after_expiry = await wait_until(
            refused, timeout=CALLER_CACHE_SECONDS + 5, what="expired session refused"
        )
    finally:
        await expiring.aclose()

    assert no_csrf.status_code == 403
    assert no_csrf.json()["error"]["code"] == "CSRF_FAILED"
    assert with_csrf.status_code == 201
    assert session_id
    assert after_logout.status_code == 401
    # Refused as a dead session, not as a request without one.
    assert after_logout.json()["error"]["code"] != "UNAUTHENTICATED"
    assert after_expiry.status_code == 401


async def test_repeated_wrong_passwords_are_throttled(stack: Stack) -> None:
    tenant = await stack.bootstrap_tenant(name="Throttle agency")
    answers = []
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        for _ in range(12):
            answer = await client.post(
                "/api/v1/auth/login",
                json={"email": tenant.email, "password": "wrong password!"},
            )
            answers.append(answer)
            if answer.status_code == 429:
                break
        right_password = await client.post(
            "/api/v1/auth/login",
            json={"email": tenant.email, "password": USER_PASSWORD},
        )

    assert answers[0].status_code == 401
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert right_password.status_code == 429


async def _authorize(
    stack: Stack, tenant: Tenant, **body: Any
) -> tuple[httpx.Response, str | None]:
    started = await stack.http.post(
        f"{tenant.base}/oauth/tiktok-business/authorize",
        json=body,
        headers=tenant.headers,
    )
    if started.status_code != 200:
        return started, None
    query = parse_qs(urlparse(started.json()["authorize_url"]).query)
    return started, query["state"][0]


async def _callback(stack: Stack, state: str) -> httpx.Response:
    code = await stack.sandbox.admin(
        "POST",
        "/auth_codes",
        json={"app_id": SANDBOX_APP_ID, "advertiser_ids": "all", "ttl_seconds": 60},
    )
    return await stack.http.get(
        "/api/oauth/tiktok-business/callback",
        params={"auth_code": code["auth_code"], "state": state},
    )


async def test_oauth_refuses_foreign_redirects_and_reused_or_expired_states(
    stack: Stack,
) -> None:
    tenant = await stack.bootstrap_tenant(name="OAuth agency")
    foreign, _ = await _authorize(stack, tenant, return_to="https://evil.example/steal")
    _, used_state = await _authorize(stack, tenant)
    _, expired_state = await _authorize(stack, tenant)
    assert used_state is not None
    assert expired_state is not None

    first = await _callback(stack, used_state)
    reused = await _callback(stack, used_state)
    async with stack.engine.begin() as connection:
        await connection.exec_driver_sql(
            "UPDATE oauth_states SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND "
            f"WHERE workspace_id = {tenant.workspace_id} AND used_at IS NULL"
        )
    expired = await _callback(stack, expired_state)

    assert foreign.status_code in (400, 422)
    assert "evil.example" not in foreign.headers.get("location", "")
    assert first.status_code == 200
    assert reused.status_code == 400
    assert expired.status_code == 400
    bindings = await stack.scalar(
        "SELECT COUNT(*) FROM ttb_bindings WHERE workspace_id = :w",
        w=tenant.workspace_id,
    )
    assert bindings == 1


async def test_another_tenants_synced_binding_is_invisible(stack: Stack) -> None:
    victim = await stack.bootstrap_tenant(name="Victim agency")
    attacker = await stack.bootstrap_tenant(name="Attacker agency")
    grant = (await stack.sandbox.advertiser_ids())[20:22]
    auth_id, run_id = await stack.connect_binding(victim, advertiser_ids=grant)
    assert run_id is not None
    await stack.wait_finished(victim, auth_id, run_id)

    probes = [
        ("GET", attacker.account(auth_id)),
        ("GET", f"{attacker.account(auth_id)}/advertisers"),
        ("GET", f"{attacker.account(auth_id)}/sync-runs/{run_id}"),
        ("POST", f"{attacker.account(auth_id)}/sync"),
        ("GET", victim.account(auth_id)),
        ("GET", f"{victim.base}/providers/tiktok-business/accounts"),
    ]
    for method, path in probes:
        answer = await stack.http.request(
            method, path, json={"scope": "meta"}, headers=attacker.headers
        )
        assert answer.status_code == 404, (method, path, answer.text)
        assert "Victim" not in answer.text


def _secret_forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


async def test_secrets_never_reach_logs_error_bodies_or_events(
    stack: Stack, figures: Callable[[str, Any], None]
) -> None:
    tenant = await stack.bootstrap_tenant(name="Secrets agency")
    auth_id, run_id = await stack.connect_binding(tenant)
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    client = await _login(stack, tenant.email, USER_PASSWORD)
    session_id = client.cookies.get("gmv_session") or ""
    errors = [
        await client.post("/api/v1/auth/tokens", json={"name": "x"}),
        await stack.http.get(
            "/api/oauth/tiktok-business/callback",
            params={"auth_code": "bogus", "state": "bogus"},
        ),
        await stack.http.post(
            "/api/v1/auth/login", json={"email": tenant.email, "password": "nope!"}
        ),
        await stack.http.get(f"{tenant.account(auth_id)}/sync-runs/999999"),
    ]
    await client.aclose()
    tokens = [
        await stack.access_token(row[0])
        for row in await stack.rows("SELECT id FROM ttb_bindings")
    ]
    secrets = {
        "app secret": SANDBOX_APP_SECRET,
        "api token": tenant.api_token,
        "password": USER_PASSWORD,
        "session id": session_id,
        **{f"tiktok token {i}": token for i, token in enumerate(tokens)},
    }
    assert all(len(value) >= 16 for value in secrets.values())

    logs = stack.logs().encode()
    bodies = b"\n".join(answer.content for answer in errors)
    events = await _all_messages(stack)
    found = [
        f"{name} in {where}"
        for name, value in secrets.items()
        for where, text in (
            ("logs", logs),
            ("error bodies", bodies),
            ("events", events),
        )
        if any(form in text for form in _secret_forms(value))
    ]
    figures("log_bytes_scanned", len(logs))
    figures("event_bytes_scanned", len(events))
    figures("secrets_checked", len(secrets))
    assert found == []


async def _all_messages(stack: Stack) -> bytes:
    """Every message of every topic of the stack, values and headers, from offset 0."""
    records = await read_topics(
        stack,
        topics.META_SYNC_COMMANDS,
        topics.PRODUCT_SYNC_COMMANDS,
        topics.SYNC_EVENTS,
        topics.OPTIONS_EVENTS,
        topics.BINDING_EVENTS,
        topics.DEAD_LETTERS,
    )
    chunks: list[bytes] = []
    for record in records:
        chunks.append(record.value or b"")
        chunks.extend(value for _, value in record.headers)
    assert chunks, "no event was read"
    return b"\n".join(chunks)


async def test_tokens_are_encrypted_at_rest_and_rotate_to_a_new_key_version(
    stack: Stack, figures: Callable[[str, Any], None]
) -> None:
    tenant = await stack.bootstrap_tenant(name="Rotation agency")
    grant = (await stack.sandbox.advertiser_ids())[22:24]
    auth_id, run_id = await stack.connect_binding(tenant, advertiser_ids=grant)
    assert run_id is not None
    await stack.wait_finished(tenant, auth_id, run_id)
    token = await stack.access_token(auth_id)
    before = await _ciphers(stack)
    assert {row[2] for row in before} == {stack.settings.crypto_active_key_version}

    new_version = stack.settings.crypto_active_key_version + 1
    keys = {str(version): key for version, key in stack.settings.crypto_keys.items()}
    keys[str(new_version)] = base64.urlsafe_b64encode(os.urandom(32)).decode()
    rotation_env = {
        "CRYPTO_KEYS": json.dumps(keys),
        "CRYPTO_ACTIVE_KEY_VERSION": str(new_version),
    }
    rotated = await asyncio.to_thread(
        subprocess.run,
        [str(GMV), "keys", "rotate"],
        env={**os.environ, **stack.env(), **rotation_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    # Only the new key from now on: anything still needing the old one would fail.
    await stack.reconfigure(
        {
            **rotation_env,
            "CRYPTO_KEYS": json.dumps({str(new_version): keys[str(new_version)]}),
        }
    )
    after = await _ciphers(stack)
    answer = await stack.request_sync(tenant, auth_id, {"scope": "meta"})
    assert answer.status_code == 202, answer.text
    run = await stack.wait_finished(tenant, auth_id, answer.json()["run"]["id"])

    figures("secrets_rotated", rotated.stdout.strip())
    for _, cipher, _ in before + after:
        for secret in (token, SANDBOX_APP_SECRET):
            assert not any(form in cipher for form in _secret_forms(secret))
    assert {row[2] for row in after} == {new_version}
    assert {row[1] for row in after}.isdisjoint({row[1] for row in before})
    assert run["status"] == "succeeded", run
    assert await stack.access_token(auth_id) == token


async def _ciphers(stack: Stack) -> list[tuple[str, bytes, int]]:
    rows = await stack.rows(
        "SELECT CONCAT('binding ', id), access_token_cipher, key_version "
        "FROM ttb_bindings UNION ALL SELECT CONCAT('app ', app_id), secret_cipher, "
        "key_version FROM provider_apps"
    )
    return [(row[0], bytes(row[1]), int(row[2])) for row in rows]
