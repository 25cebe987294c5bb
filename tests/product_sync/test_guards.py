"""The gateway's product-sync guards (``request_product_sync``) on the real MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from product_sync_support import Pair, make_runtime, request, seed_pair, world
from sqlalchemy import func, select, update

from gmv_common.db.base import utcnow
from gmv_common.db.models import OutboxMessage, SyncRun
from gmv_common.errors import ConflictError, RateLimitedError
from gmv_common.runtime import Runtime
from gmv_common.settings import Settings

pytestmark = pytest.mark.mariadb

COOLDOWN = 900


@pytest.fixture
async def runtime(
    mariadb_url: str, make_settings: Callable[..., Settings], topic_prefix: str
) -> AsyncIterator[Runtime]:
    runtime = make_runtime(
        make_settings(database_url=mariadb_url, kafka_topic_prefix=topic_prefix)
    )
    yield runtime
    await runtime.close()


@pytest.fixture
async def pair(runtime: Runtime) -> Pair:
    return await seed_pair(runtime.sessionmaker, runtime.keyring, world(products=5))


async def gateway_request(runtime: Runtime, pair: Pair, **options: Any) -> Any:
    """What the gateway does for ``POST .../products/sync``: 409 and 429 guards on."""
    options.setdefault("on_active", "conflict")
    options.setdefault("cooldown_seconds", COOLDOWN)
    return await request(
        runtime.sessionmaker,
        pair,
        topic_prefix=runtime.settings.kafka_topic_prefix,
        **options,
    )


async def finish(runtime: Runtime, run_id: int, *, status: str, ago: float) -> None:
    """Mark a run finished ``ago`` seconds after it was created ``ago`` seconds ago."""
    created = utcnow() - timedelta(seconds=ago)
    async with runtime.sessionmaker.begin() as session:
        await session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id)
            .values(
                status=status, active_key=None, created_at=created, finished_at=created
            )
        )


async def run_count(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(SyncRun)) or 0)


async def command_count(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.topic.like("%commands.product-sync"))
            )
            or 0
        )


async def test_two_identical_sync_requests_one_second_apart_start_one_run(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair)
    await asyncio.sleep(1.0)

    with pytest.raises(ConflictError) as refused:
        await gateway_request(runtime, pair)
    joined = await gateway_request(runtime, pair, on_active="join")

    assert first.created
    assert refused.value.code == "SYNC_IN_PROGRESS"
    assert refused.value.details["run_id"] == first.run.id
    assert not joined.created
    assert joined.run.id == first.run.id
    assert await run_count(runtime) == 1
    assert await command_count(runtime) == 1


async def test_concurrent_identical_requests_start_one_run(
    runtime: Runtime, pair: Pair
) -> None:
    results = await asyncio.gather(
        *(gateway_request(runtime, pair, on_active="join") for _ in range(6))
    )

    assert len({result.run.id for result in results}) == 1
    assert sum(result.created for result in results) == 1
    assert await run_count(runtime) == 1
    assert await command_count(runtime) == 1


async def test_concurrent_requests_with_one_idempotency_key_share_the_run(
    runtime: Runtime, pair: Pair
) -> None:
    results = await asyncio.gather(
        *(gateway_request(runtime, pair, idempotency_key="click-1") for _ in range(6)),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, BaseException)]
    assert refused == []
    assert len({r.run.id for r in results}) == 1
    assert await run_count(runtime) == 1


async def test_idempotency_key_returns_the_same_run_even_after_it_finished(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair, idempotency_key="retry-me")
    await finish(runtime, first.run.id, status="succeeded", ago=5)

    again = await gateway_request(runtime, pair, idempotency_key="retry-me")

    assert again.run.id == first.run.id
    assert again.reason == "idempotency_key"
    assert not again.created


async def test_idempotency_key_is_scoped_to_the_binding(runtime: Runtime) -> None:
    state = world(products=5)
    one = await seed_pair(runtime.sessionmaker, runtime.keyring, state)
    other = await seed_pair(runtime.sessionmaker, runtime.keyring, state)

    first = await gateway_request(runtime, one, idempotency_key="same-key")
    second = await gateway_request(runtime, other, idempotency_key="same-key")

    assert first.created
    assert second.created
    assert first.run.id != second.run.id


async def test_new_request_within_cooldown_is_rate_limited_with_retry_after(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair)
    await finish(runtime, first.run.id, status="succeeded", ago=60)

    with pytest.raises(RateLimitedError) as limited:
        await gateway_request(runtime, pair)

    assert limited.value.code == "SYNC_RATE_LIMITED"
    assert limited.value.status_code == 429
    assert COOLDOWN - 60 <= limited.value.retry_after <= COOLDOWN - 60 + 2
    assert await run_count(runtime) == 1


async def test_request_after_cooldown_starts_a_new_run(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair)
    await finish(runtime, first.run.id, status="partial", ago=COOLDOWN + 1)

    second = await gateway_request(runtime, pair)

    assert second.created
    assert second.run.id != first.run.id


async def test_failed_run_does_not_start_the_cooldown(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair)
    await finish(runtime, first.run.id, status="failed", ago=30)

    second = await gateway_request(runtime, pair)

    assert second.created


async def test_guards_are_per_advertiser_store_and_eligibility(
    runtime: Runtime, pair: Pair
) -> None:
    first = await gateway_request(runtime, pair)
    other_advertiser = Pair(**{**pair.__dict__, "advertiser_id": "7000000000000000001"})

    second = await gateway_request(runtime, other_advertiser)
    third = await gateway_request(runtime, pair, eligibility="ads")

    assert len({first.run.id, second.run.id, third.run.id}) == 3
    assert await command_count(runtime) == 3


async def test_stored_run_keeps_the_chosen_advertiser_for_the_worker(
    runtime: Runtime, pair: Pair
) -> None:
    requested = await gateway_request(runtime, pair, bc_id=pair.bc_id)

    async with runtime.sessionmaker() as session:
        run = await session.get(SyncRun, requested.run.id)
    assert run is not None
    assert run.params == {
        "advertiser_id": pair.advertiser_id,
        "store_id": pair.store_id,
        "bc_id": pair.bc_id,
        "eligibility": "gmv_max",
    }
