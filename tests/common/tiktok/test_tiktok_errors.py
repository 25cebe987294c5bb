"""Every TikTok error class, retries with backoff, and secrets kept out of sight."""

from __future__ import annotations

import logging

import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import SecretStr
from tiktok_support import Sandbox

from gmv_common.settings import Settings
from gmv_common.tiktok import (
    AccessToken,
    InMemoryRateLimiter,
    PacerConfig,
    Priority,
    RetryPolicy,
    TikTokAppCredentialsError,
    TikTokAuthCodeError,
    TikTokAuthError,
    TikTokClient,
    TikTokCredentials,
    TikTokEndpointError,
    TikTokError,
    TikTokHTTPError,
    TikTokNotFoundError,
    TikTokPermissionError,
    TikTokRateLimitedError,
    TikTokRequestError,
    TikTokTransportError,
    TikTokUnavailableError,
)
from gmv_sandbox.faults import FaultRule
from gmv_sandbox.server import SandboxServer

BULK = Priority.BULK


def _calls(sandbox: Sandbox, endpoint: str) -> int:
    calls: dict[str, int] = sandbox.state.counters()["calls"]
    return calls.get(endpoint, 0)


def _inject(sandbox: Sandbox, endpoint: str, code: int, *, times: int) -> None:
    sandbox.state.add_fault(
        FaultRule(endpoint=endpoint, error_code=code, error_rate=1.0, remaining=times)
    )


@pytest.mark.parametrize(
    ("tiktok_code", "error_class", "code"),
    [
        (40100, TikTokRateLimitedError, "TIKTOK_RATE_LIMITED"),
        (40133, TikTokRateLimitedError, "TIKTOK_RATE_LIMITED"),
        (40016, TikTokRateLimitedError, "TIKTOK_RATE_LIMITED"),
        (61000, TikTokRateLimitedError, "TIKTOK_RATE_LIMITED"),
        (50000, TikTokUnavailableError, "TIKTOK_UNAVAILABLE"),
        (50002, TikTokUnavailableError, "TIKTOK_UNAVAILABLE"),
        (51035, TikTokUnavailableError, "TIKTOK_UNAVAILABLE"),
        (60001, TikTokUnavailableError, "TIKTOK_UNAVAILABLE"),
    ],
)
async def test_retriable_codes_are_retried_with_logged_backoff(
    sandbox: Sandbox, tiktok_code: int, error_class: type[TikTokError], code: str
) -> None:
    _inject(sandbox, "bc/get", tiktok_code, times=2)

    async with sandbox.client() as client:
        with structlog.testing.capture_logs() as logs:
            page = await client.get_business_centers_page(
                sandbox.credentials, priority=BULK
            )

    retries = [entry for entry in logs if entry["event"] == "tiktok.retry"]
    assert page.page_info.total_number == 60
    assert _calls(sandbox, "bc/get") == 3
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert {entry["endpoint"] for entry in retries} == {"bc/get/"}
    assert {entry["code"] for entry in retries} == {code}
    assert {entry["tiktok_code"] for entry in retries} == {tiktok_code}
    assert all(entry["wait"] >= 0 for entry in retries)
    assert error_class.retriable


@pytest.mark.parametrize(
    ("tiktok_code", "error_class", "code"),
    [
        (40001, TikTokPermissionError, "TIKTOK_PERMISSION_DENIED"),
        (40118, TikTokPermissionError, "TIKTOK_PERMISSION_DENIED"),
        (40002, TikTokRequestError, "TIKTOK_INVALID_REQUEST"),
        (40011, TikTokRequestError, "TIKTOK_INVALID_REQUEST"),
        (40007, TikTokNotFoundError, "TIKTOK_OBJECT_NOT_FOUND"),
        (40102, TikTokAuthError, "TOKEN_INVALID"),
        (40104, TikTokAuthError, "TOKEN_INVALID"),
        (40105, TikTokAuthError, "TOKEN_INVALID"),
        (40106, TikTokAuthError, "TOKEN_INVALID"),
        (40110, TikTokAuthCodeError, "AUTH_CODE_INVALID"),
        (40113, TikTokAppCredentialsError, "TIKTOK_APP_INVALID"),
        (47777, TikTokError, "TIKTOK_ERROR"),
    ],
)
async def test_final_codes_raise_their_class_at_once(
    sandbox: Sandbox, tiktok_code: int, error_class: type[TikTokError], code: str
) -> None:
    _inject(sandbox, "bc/get", tiktok_code, times=1)

    async with sandbox.client() as client:
        with pytest.raises(TikTokError) as raised:
            await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert type(raised.value) is error_class
    assert raised.value.code == code
    assert raised.value.tiktok_code == tiktok_code
    assert not raised.value.retriable
    assert raised.value.message.endswith(error_class.user_action)
    assert raised.value.details["endpoint"] == "bc/get/"
    assert raised.value.details["request_id"]
    assert _calls(sandbox, "bc/get") == 1


async def test_retries_stop_after_max_attempts(sandbox: Sandbox) -> None:
    _inject(sandbox, "bc/get", 50002, times=10)

    async with sandbox.client(max_attempts=3) as client:
        with pytest.raises(TikTokUnavailableError) as raised:
            await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert raised.value.retriable
    assert _calls(sandbox, "bc/get") == 3


async def test_http_5xx_and_dropped_connections_are_retried(sandbox: Sandbox) -> None:
    faults = [
        FaultRule(endpoint="bc/get", http_error_rate=1.0, http_status=504, remaining=1),
        FaultRule(endpoint="bc/get", drop_rate=1.0, remaining=1),
    ]
    codes = []

    async with sandbox.client() as client:
        for fault in faults:
            sandbox.state.add_fault(fault)
            with structlog.testing.capture_logs() as logs:
                page = await client.get_business_centers_page(
                    sandbox.credentials, priority=BULK
                )
            assert page.page_info.total_number == 60
            codes += [e["code"] for e in logs if e["event"] == "tiktok.retry"]

    assert codes == ["TIKTOK_HTTP_ERROR", "TIKTOK_UNREACHABLE"]
    assert _calls(sandbox, "bc/get") == 4


async def test_persistent_http_5xx_raises_http_error(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(FaultRule(endpoint="bc/get", http_error_rate=1.0))

    async with sandbox.client(max_attempts=2) as client:
        with pytest.raises(TikTokHTTPError) as raised:
            await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert raised.value.code == "TIKTOK_HTTP_ERROR"
    assert raised.value.retriable


async def test_a_timeout_is_retried_over_real_http(sandbox: Sandbox) -> None:
    sandbox.state.add_fault(FaultRule(endpoint="bc/get", latency_ms=1500, remaining=1))
    settings = Settings(
        _env_file=None, environment="test", tiktok_http_timeout_seconds=0.3
    )

    with SandboxServer(sandbox.state) as server:
        async with TikTokClient(
            limiter=InMemoryRateLimiter(),
            settings=settings,
            base_url=server.api_base_url,
            retry=RetryPolicy(initial_wait_seconds=0.01, max_wait_seconds=0.05),
        ) as client:
            with structlog.testing.capture_logs() as logs:
                page = await client.get_business_centers_page(
                    sandbox.credentials, priority=BULK
                )

    codes = [entry["code"] for entry in logs if entry["event"] == "tiktok.retry"]
    assert page.page_info.total_number == 60
    assert codes == ["TIKTOK_UNREACHABLE"]


class _SendDelaySpy(InMemoryRateLimiter):
    def __init__(self) -> None:
        super().__init__(default_qps=1000)
        self.delays: list[float] = []

    def observe_send_delay(self, app_id: str, delay: float) -> None:
        self.delays.append(delay)
        super().observe_send_delay(app_id, delay)


async def test_the_client_reports_when_each_request_left_after_its_slot(
    sandbox: Sandbox,
) -> None:
    limiter = _SendDelaySpy()

    with SandboxServer(sandbox.state) as server:
        async with TikTokClient(
            limiter=limiter,
            settings=Settings(_env_file=None, environment="test"),
            base_url=server.api_base_url,
        ) as client:
            for _ in range(3):
                await client.get_business_centers_page(
                    sandbox.credentials, priority=BULK
                )

    assert len(limiter.delays) == 3
    assert all(0 <= delay < 1 for delay in limiter.delays)


async def test_an_unreachable_server_raises_transport_error() -> None:
    credentials = TikTokCredentials(app_id="1", access_token=SecretStr("t"))

    async with TikTokClient(
        limiter=InMemoryRateLimiter(),
        settings=Settings(_env_file=None, environment="test"),
        base_url="http://127.0.0.1:9/open_api/v1.3/",
        retry=RetryPolicy(max_attempts=2, initial_wait_seconds=0.01),
    ) as client:
        with pytest.raises(TikTokTransportError) as raised:
            await client.get_business_centers_page(credentials, priority=BULK)

    assert raised.value.code == "TIKTOK_UNREACHABLE"
    assert not raised.value.request_sent
    assert raised.value.__cause__ is None


async def test_a_wrong_base_url_is_not_retried(sandbox: Sandbox) -> None:
    async with sandbox.client(base_url="http://sandbox.test/open_api/v9/") as client:
        with pytest.raises(TikTokEndpointError) as raised:
            await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    assert raised.value.code == "TIKTOK_ENDPOINT_NOT_FOUND"
    assert raised.value.details["http"] == 404
    assert not raised.value.retriable


async def test_an_auth_code_exchange_is_not_resent_after_a_dropped_connection(
    sandbox: Sandbox,
) -> None:
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    sandbox.state.add_fault(
        FaultRule(endpoint="oauth2/access_token", drop_rate=1.0, remaining=1)
    )

    async with sandbox.client() as client:
        with pytest.raises(TikTokTransportError) as raised:
            await client.exchange_auth_code(
                app_id=sandbox.app_id,
                app_secret=SecretStr(sandbox.app_secret),
                auth_code=SecretStr(code.auth_code),
            )

    assert raised.value.request_sent
    assert _calls(sandbox, "oauth2/access_token") == 1


async def test_an_auth_code_exchange_is_retried_after_a_rate_limit(
    sandbox: Sandbox,
) -> None:
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    _inject(sandbox, "oauth2/access_token", 40100, times=1)

    async with sandbox.client() as client:
        token = await client.exchange_auth_code(
            app_id=sandbox.app_id,
            app_secret=SecretStr(sandbox.app_secret),
            auth_code=SecretStr(code.auth_code),
        )

    assert token.access_token.get_secret_value()
    assert _calls(sandbox, "oauth2/access_token") == 2


async def test_a_40100_slows_the_shared_limiter_down(sandbox: Sandbox) -> None:
    limiter = InMemoryRateLimiter(
        default_qps=100, config=PacerConfig(throttle_pause_seconds=0.05)
    )
    before = REGISTRY.get_sample_value("gmv_tiktok_throttled_total") or 0.0
    _inject(sandbox, "bc/get", 40100, times=1)

    async with sandbox.client(limiter=limiter) as client:
        await client.get_business_centers_page(sandbox.credentials, priority=BULK)

    state = await limiter.snapshot(sandbox.app_id)
    assert state is not None
    assert state.throttle_count == 1
    assert state.rate_factor == pytest.approx(0.5, abs=0.01)
    assert REGISTRY.get_sample_value("gmv_tiktok_throttled_total") == before + 1


async def test_a_full_read_with_ten_percent_faults_returns_exactly_the_sandbox_data(
    sandbox: Sandbox,
) -> None:
    advertiser_id = next(iter(sandbox.state.world.advertisers))
    bc_id = next(iter(sandbox.state.world.business_centers))
    store = sandbox.state.add_store(
        advertiser_id, store_authorized_bc_id=bc_id, products=260
    )
    expected = sandbox.state.snapshot(access_token=sandbox.access_token)
    expected_products = sandbox.state.expected_products(store.store_id)
    sandbox.state.set_faults(
        [
            FaultRule(error_code=50002, error_rate=0.04, http_error_rate=0.03),
            FaultRule(drop_rate=0.01, error_code=40100, error_rate=0.02),
        ],
        seed=3,
    )

    async with sandbox.client(max_attempts=10) as client:
        credentials = sandbox.credentials
        centers = await client.get_all_business_centers(credentials, priority=BULK)
        advertisers = await client.get_authorized_advertisers(
            credentials, priority=BULK
        )
        ids = [a.advertiser_id for a in advertisers]
        infos = await client.get_advertiser_info(credentials, ids, priority=BULK)
        stores = {
            advertiser: [
                s.raw
                for s in await client.get_stores(
                    credentials, advertiser_id=advertiser, priority=BULK
                )
            ]
            for advertiser in ids
        }
        products = await client.get_all_store_products(
            credentials, bc_id=bc_id, store_id=store.store_id, priority=BULK
        )

    faults = sum(sandbox.state.counters()["faults"].values())
    total = sandbox.state.counters()["total_calls"]
    assert faults / total > 0.05
    assert [c.raw for c in centers.items] == expected["business_centers"]
    assert [a.raw for a in advertisers] == expected["advertisers"]
    assert [i.raw for i in infos] == expected["advertiser_info"]
    assert stores == expected["stores"]
    assert [p.raw for p in products.items] == expected_products


async def test_tokens_and_secrets_never_reach_logs_errors_or_reprs(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = sandbox.state.mint_auth_code(sandbox.app_id)
    secrets = [sandbox.access_token, sandbox.app_secret, code.auth_code]
    echo = f"token {sandbox.access_token} secret {sandbox.app_secret} is wrong"
    sandbox.state.add_fault(
        FaultRule(
            endpoint="oauth2/advertiser/get",
            error_code=50002,
            error_rate=1.0,
            remaining=1,
        )
    )
    sandbox.state.add_fault(
        FaultRule(
            endpoint="bc/get",
            error_code=40001,
            error_rate=1.0,
            error_message=echo,
            remaining=1,
        )
    )
    exchange = {
        "app_id": sandbox.app_id,
        "app_secret": SecretStr(sandbox.app_secret),
        "auth_code": SecretStr(code.auth_code),
    }
    seen: list[object] = []

    async with sandbox.client() as client:
        with structlog.testing.capture_logs() as logs:
            await client.get_authorized_advertisers(sandbox.credentials, priority=BULK)
            token = await client.exchange_auth_code(**exchange)
            with pytest.raises(TikTokAuthCodeError) as reused:
                await client.exchange_auth_code(**exchange)
            with pytest.raises(TikTokPermissionError) as echoed:
                await client.get_business_centers_page(
                    sandbox.credentials, priority=BULK
                )
            seen.extend([client, sandbox.credentials, exchange])

    for error in (reused.value, echoed.value):
        seen.extend([str(error), repr(error), error.to_dict()])
    seen.extend([token, AccessToken(access_token=SecretStr(sandbox.access_token))])
    secrets.append(token.access_token.get_secret_value())
    visible = "\n".join([repr(item) for item in seen] + [repr(logs), caplog.text])
    assert "advertiser/get" in caplog.text
    assert "%5Bredacted%5D" in caplog.text
    assert "[redacted]" in str(echoed.value)
    for secret in secrets:
        assert secret not in visible
