"""OAuth: auth codes, the token exchange, revocation and the advertiser list."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from sandbox_support import API

from gmv_sandbox import DeveloperApp, SandboxState


async def _exchange(
    client: httpx.AsyncClient, app: DeveloperApp, auth_code: str
) -> dict[str, object]:
    response = await client.post(
        f"{API}oauth2/access_token/",
        json={"app_id": app.app_id, "secret": app.secret, "auth_code": auth_code},
    )
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_auth_code_exchanges_for_a_working_token(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    granted = list(state.world.advertisers)[:3]
    code = state.mint_auth_code(developer_app.app_id, granted)

    body = await _exchange(raw_client, developer_app, code.auth_code)

    assert body["code"] == 0
    data = body["data"]
    assert isinstance(data, dict)
    assert sorted(data["advertiser_ids"]) == sorted(granted)
    assert all(isinstance(scope, int) for scope in data["scope"])
    listed = await raw_client.get(
        f"{API}oauth2/advertiser/get/",
        params={"app_id": developer_app.app_id, "secret": developer_app.secret},
        headers={"Access-Token": data["access_token"]},
    )
    assert sorted(a["advertiser_id"] for a in listed.json()["data"]["list"]) == sorted(
        granted
    )


async def test_auth_code_is_single_use(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    code = state.mint_auth_code(developer_app.app_id)

    first = await _exchange(raw_client, developer_app, code.auth_code)
    second = await _exchange(raw_client, developer_app, code.auth_code)

    assert first["code"] == 0
    assert second["code"] == 40110
    assert second["data"] == {}


async def test_expired_auth_code_is_refused(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    code = state.mint_auth_code(developer_app.app_id, ttl_seconds=0)

    body = await _exchange(raw_client, developer_app, code.auth_code)

    assert body["code"] == 40110


async def test_auth_code_of_another_app_is_refused(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    other = state.create_app()
    code = state.mint_auth_code(other.app_id)

    body = await _exchange(raw_client, developer_app, code.auth_code)

    assert body["code"] == 40110


async def test_wrong_secret_is_40101(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    code = state.mint_auth_code(developer_app.app_id)
    impostor = DeveloperApp(developer_app.app_id, "f" * 40, "impostor")

    body = await _exchange(raw_client, impostor, code.auth_code)

    assert body["code"] == 40101
    assert not code.used


async def test_exchange_without_advertiser_ids_when_asked(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    code = state.mint_auth_code(developer_app.app_id)

    response = await raw_client.post(
        f"{API}oauth2/access_token/",
        json={
            "app_id": developer_app.app_id,
            "secret": developer_app.secret,
            "auth_code": code.auth_code,
            "return_advertiser_ids": False,
        },
    )

    assert set(response.json()["data"]) == {"access_token", "scope"}


async def test_body_that_is_not_a_json_object_is_40002(
    raw_client: httpx.AsyncClient,
) -> None:
    response = await raw_client.post(
        f"{API}oauth2/access_token/",
        content=b"app_id=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.json()["code"] == 40002


async def test_revoke_token_ends_the_token(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    token = state.issue_token(developer_app.app_id)
    headers = {"Access-Token": token.access_token}

    revoked = await raw_client.post(
        f"{API}oauth2/revoke_token/",
        json={
            "app_id": developer_app.app_id,
            "secret": developer_app.secret,
            "access_token": token.access_token,
        },
    )
    after = await raw_client.get(f"{API}bc/get/", headers=headers)

    assert revoked.json()["code"] == 0
    assert revoked.json()["data"]["app_id"] == developer_app.app_id
    assert len(revoked.json()["data"]["advertiser_ids"]) == len(state.world.advertisers)
    assert after.json()["code"] == 40105


async def test_advertiser_get_checks_app_credentials_against_the_token(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    token = state.issue_token(developer_app.app_id)
    other = state.create_app()
    headers = {"Access-Token": token.access_token}

    async def code_for(params: dict[str, str]) -> int:
        response = await raw_client.get(
            f"{API}oauth2/advertiser/get/", params=params, headers=headers
        )
        code: int = response.json()["code"]
        return code

    assert await code_for({"app_id": developer_app.app_id, "secret": "x"}) == 40101
    assert await code_for({"app_id": developer_app.app_id}) == 40002
    assert await code_for({"app_id": other.app_id, "secret": other.secret}) == 40105


async def test_withdrawn_advertiser_leaves_the_token_grant(
    raw_client: httpx.AsyncClient, state: SandboxState, developer_app: DeveloperApp
) -> None:
    token = state.issue_token(developer_app.app_id)
    withdrawn = next(iter(state.world.advertisers))

    state.revoke_advertiser(token.access_token, withdrawn)

    listed = await raw_client.get(
        f"{API}oauth2/advertiser/get/",
        params={"app_id": developer_app.app_id, "secret": developer_app.secret},
        headers={"Access-Token": token.access_token},
    )
    ids = [a["advertiser_id"] for a in listed.json()["data"]["list"]]
    assert withdrawn not in ids
    assert len(ids) == len(state.world.advertisers) - 1


async def test_consent_page_redirects_with_a_usable_auth_code(
    raw_client: httpx.AsyncClient, developer_app: DeveloperApp
) -> None:
    response = await raw_client.get(
        "/portal/auth",
        params={
            "app_id": developer_app.app_id,
            "state": "s-123",
            "redirect_uri": "https://gmv.example/callback?from=tiktok",
        },
    )
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)

    assert response.status_code == 302
    assert location.netloc == "gmv.example"
    assert query["state"] == ["s-123"]
    assert query["from"] == ["tiktok"]
    body = await _exchange(raw_client, developer_app, query["auth_code"][0])
    assert body["code"] == 0
