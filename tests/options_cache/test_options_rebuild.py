"""Rebuilding a binding's options document: content, ETag, version, outbox event."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from options_support import (
    add_advertiser,
    add_business_center,
    add_store,
    link_advertiser_store,
    link_bc_advertiser,
    make_binding,
    options_updated_count,
    seed_small_graph,
    tombstone,
)
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    Store,
)
from gmv_common.errors import NotFoundError
from gmv_options_cache import (
    OptionsDocument,
    RebuildResult,
    StoredOptions,
    load_options,
    rebuild_options,
)

PREFIX = "gmv"

Sessions = async_sessionmaker[AsyncSession]


async def seeded_binding(sessionmaker: Sessions) -> Binding:
    async with sessionmaker.begin() as session:
        binding = await make_binding(session)
        await seed_small_graph(session, binding)
    return binding


async def rebuild(
    sessionmaker: Sessions, binding: Binding, *, run_id: int | None = None
) -> RebuildResult:
    async with sessionmaker.begin() as session:
        return await rebuild_options(
            session,
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            run_id=run_id,
            topic_prefix=PREFIX,
        )


async def stored(sessionmaker: Sessions, binding: Binding) -> StoredOptions:
    async with sessionmaker() as session:
        options = await load_options(session, binding.workspace_id, binding.id)
    assert options is not None
    return options


async def test_first_rebuild_stores_version_one_and_emits_options_updated(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)

    result = await rebuild(sessionmaker, binding, run_id=41)

    assert result.changed
    assert result.version == 1
    assert result.etag.startswith('"')
    assert result.etag.endswith('"')
    assert len(result.etag) == 34
    options = await stored(sessionmaker, binding)
    assert (options.etag, options.version, options.run_id) == (result.etag, 1, 41)
    async with sessionmaker() as session:
        assert await options_updated_count(session, auth_id=binding.id) == 1


async def test_rebuild_without_changes_keeps_bytes_etag_and_version_and_emits_nothing(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    first = await rebuild(sessionmaker, binding, run_id=1)
    before = await stored(sessionmaker, binding)

    again = await rebuild(sessionmaker, binding, run_id=2)

    assert again == RebuildResult(changed=False, etag=first.etag, version=1)
    after = await stored(sessionmaker, binding)
    assert after.body == before.body
    assert after.run_id == 1
    assert after.built_at == before.built_at
    async with sessionmaker() as session:
        assert await options_updated_count(session, auth_id=binding.id) == 1


Mutation = Callable[[AsyncSession, Binding], Awaitable[object]]


async def add_an_advertiser(session: AsyncSession, binding: Binding) -> None:
    await add_advertiser(session, binding=binding, advertiser_id="6004", bc_id="7002")


async def rename_an_advertiser(session: AsyncSession, binding: Binding) -> None:
    await session.execute(
        update(Advertiser)
        .where(Advertiser.auth_id == binding.id, Advertiser.advertiser_id == "6002")
        .values(name="Renamed advertiser")
    )


async def remove_an_advertiser(session: AsyncSession, binding: Binding) -> None:
    await tombstone(session, Advertiser, auth_id=binding.id, advertiser_id="6003")


async def add_a_store(session: AsyncSession, binding: Binding) -> None:
    await add_store(session, binding=binding, store_id="8004", bc_id="7002")


async def rename_a_store(session: AsyncSession, binding: Binding) -> None:
    await session.execute(
        update(Store)
        .where(Store.auth_id == binding.id, Store.store_id == "8001")
        .values(name="Renamed store")
    )


async def remove_a_store(session: AsyncSession, binding: Binding) -> None:
    await tombstone(session, Store, auth_id=binding.id, store_id="8002")


async def store_loses_gmv_max(session: AsyncSession, binding: Binding) -> None:
    await session.execute(
        update(Store)
        .where(Store.auth_id == binding.id, Store.store_id == "8003")
        .values(gmv_max_available=False)
    )


async def add_a_business_center(session: AsyncSession, binding: Binding) -> None:
    await add_business_center(session, binding=binding, bc_id="7003")


async def add_a_store_link(session: AsyncSession, binding: Binding) -> None:
    await link_advertiser_store(
        session, binding=binding, advertiser_id="6003", store_id="8001"
    )


async def remove_a_store_link(session: AsyncSession, binding: Binding) -> None:
    await tombstone(
        session,
        AdvertiserStoreLink,
        auth_id=binding.id,
        advertiser_id="6001",
        store_id="8002",
    )


async def add_a_bc_link(session: AsyncSession, binding: Binding) -> None:
    await link_bc_advertiser(
        session, binding=binding, bc_id="7002", advertiser_id="6001"
    )


async def remove_a_bc_link(session: AsyncSession, binding: Binding) -> None:
    await tombstone(
        session,
        BcAdvertiserLink,
        auth_id=binding.id,
        bc_id="7002",
        advertiser_id="6002",
    )


# In an order where each one still changes the document after all the earlier ones.
MUTATIONS = [
    add_an_advertiser,
    rename_an_advertiser,
    add_a_store,
    rename_a_store,
    store_loses_gmv_max,
    add_a_business_center,
    add_a_store_link,
    remove_a_store_link,
    add_a_bc_link,
    remove_a_bc_link,
    remove_an_advertiser,
    remove_a_store,
]


@pytest.mark.parametrize("mutation", MUTATIONS)
async def test_etag_changes_when_synced_data_changes_after_the_first_build(
    sessionmaker: Sessions, mutation: Mutation
) -> None:
    # The older system's ETag froze after the first sync; here each later change must show.
    binding = await seeded_binding(sessionmaker)
    first = await rebuild(sessionmaker, binding, run_id=1)
    async with sessionmaker.begin() as session:
        await mutation(session, binding)

    second = await rebuild(sessionmaker, binding, run_id=2)
    third = await rebuild(sessionmaker, binding, run_id=3)

    assert second.changed
    assert second.etag != first.etag
    assert second.version == 2
    assert third == RebuildResult(changed=False, etag=second.etag, version=2)
    options = await stored(sessionmaker, binding)
    assert options.run_id == 2
    async with sessionmaker() as session:
        assert await options_updated_count(session, auth_id=binding.id) == 2


@pytest.mark.mariadb
async def test_on_mariadb_each_change_in_turn_moves_the_etag_and_version(
    mariadb_sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(mariadb_sessionmaker)
    result = await rebuild(mariadb_sessionmaker, binding, run_id=0)
    seen = {result.etag}

    for run_id, mutation in enumerate(MUTATIONS, start=1):
        async with mariadb_sessionmaker.begin() as session:
            await mutation(session, binding)
        changed = await rebuild(mariadb_sessionmaker, binding, run_id=run_id)
        same = await rebuild(mariadb_sessionmaker, binding, run_id=run_id + 100)

        assert changed.changed, mutation.__name__
        assert changed.etag not in seen, mutation.__name__
        assert changed.version == run_id + 1
        assert same == RebuildResult(False, changed.etag, changed.version)
        seen.add(changed.etag)


async def test_document_lists_live_entities_sorted_and_links_them_both_ways(
    sessionmaker: Sessions,
) -> None:
    await check_document_shape(sessionmaker)


@pytest.mark.mariadb
async def test_on_mariadb_document_lists_live_entities_and_links_them_both_ways(
    mariadb_sessionmaker: Sessions,
) -> None:
    await check_document_shape(mariadb_sessionmaker)


async def check_document_shape(sessionmaker: Sessions) -> None:
    binding = await seeded_binding(sessionmaker)
    async with sessionmaker.begin() as session:
        await add_store(session, binding=binding, store_id="8000", bc_id="7001")
        await tombstone(session, Store, auth_id=binding.id, store_id="8000")
    await rebuild(sessionmaker, binding, run_id=5)

    document = orjson.loads((await stored(sessionmaker, binding)).body)

    OptionsDocument.model_validate(document)
    assert [bc["bc_id"] for bc in document["bcs"]] == ["7001", "7002"]
    assert [a["advertiser_id"] for a in document["advertisers"]] == [
        "6001",
        "6002",
        "6003",
    ]
    assert [s["store_id"] for s in document["stores"]] == ["8001", "8002", "8003"]
    assert document["links"] == {
        "bc_to_advertisers": {"7001": ["6001", "6002"], "7002": ["6002", "6003"]},
        "advertiser_to_stores": {
            "6001": ["8001", "8002"],
            "6002": ["8002"],
            "6003": ["8003"],
        },
        "store_to_advertisers": {
            "8001": ["6001"],
            "8002": ["6001", "6002"],
            "8003": ["6003"],
        },
    }
    assert document["advertisers"][0] == {
        "advertiser_id": "6001",
        "name": "Advertiser 6001",
        "display_name": "Advertiser 6001",
        "status": "STATUS_ENABLE",
        "industry": "Retail",
        "currency": "USD",
        "timezone": "Etc/GMT",
        "display_timezone": "UTC",
        "country_code": "US",
        "bc_id": "7001",
    }
    assert document["stores"][2]["gmv_max_available"] is True
    assert (document["alias"], document["status"]) == ("Main account", "active")
    assert (document["version"], document["run_id"]) == (1, 5)


AWKWARD_NAMES = [
    'Quote " backslash \\ slash / end',
    "Emoji 🛍️ and 中文 and é",
    "Tab\tnew line\ncontrol \u0001",
    "",
]


async def check_awkward_names_round_trip(sessionmaker: Sessions) -> None:
    async with sessionmaker.begin() as session:
        binding = await make_binding(session, alias=AWKWARD_NAMES[0])
        await add_business_center(session, binding=binding, bc_id="7001")
        for index, name in enumerate(AWKWARD_NAMES):
            await add_advertiser(
                session,
                binding=binding,
                advertiser_id=f"600{index}",
                bc_id="7001",
                name=name,
            )
            await add_store(
                session,
                binding=binding,
                store_id=f"800{index}",
                bc_id="7001",
                name=name,
            )
    first = await rebuild(sessionmaker, binding)

    document = orjson.loads((await stored(sessionmaker, binding)).body)
    again = await rebuild(sessionmaker, binding)

    assert [a["name"] for a in document["advertisers"]] == AWKWARD_NAMES
    assert [s["name"] for s in document["stores"]] == AWKWARD_NAMES
    assert document["alias"] == AWKWARD_NAMES[0]
    assert again == RebuildResult(changed=False, etag=first.etag, version=1)


async def test_names_with_quotes_escapes_and_emoji_survive_exactly(
    sessionmaker: Sessions,
) -> None:
    await check_awkward_names_round_trip(sessionmaker)


@pytest.mark.mariadb
async def test_on_mariadb_names_with_quotes_escapes_and_emoji_survive_exactly(
    mariadb_sessionmaker: Sessions,
) -> None:
    await check_awkward_names_round_trip(mariadb_sessionmaker)


async def test_links_to_tombstoned_entities_are_left_out(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    async with sessionmaker.begin() as session:
        await tombstone(session, Advertiser, auth_id=binding.id, advertiser_id="6001")
        await tombstone(session, BusinessCenter, auth_id=binding.id, bc_id="7002")
    await rebuild(sessionmaker, binding)

    links = orjson.loads((await stored(sessionmaker, binding)).body)["links"]

    assert links["bc_to_advertisers"] == {"7001": ["6002"]}
    assert "6001" not in links["advertiser_to_stores"]
    assert links["store_to_advertisers"]["8001"] == []
    assert links["store_to_advertisers"]["8002"] == ["6002"]


async def test_same_rows_written_in_another_order_rebuild_to_identical_bytes(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    first = await rebuild(sessionmaker, binding, run_id=1)
    body = (await stored(sessionmaker, binding)).body
    async with sessionmaker.begin() as session:
        for model in (
            AdvertiserStoreLink,
            BcAdvertiserLink,
            Store,
            Advertiser,
            BusinessCenter,
        ):
            await session.execute(delete(model).where(model.auth_id == binding.id))
        for advertiser_id, store_id in (("6003", "8003"), ("6002", "8002")):
            await link_advertiser_store(
                session, binding=binding, advertiser_id=advertiser_id, store_id=store_id
            )
        await link_advertiser_store(
            session, binding=binding, advertiser_id="6001", store_id="8002"
        )
        await link_advertiser_store(
            session, binding=binding, advertiser_id="6001", store_id="8001"
        )
        await link_bc_advertiser(
            session, binding=binding, bc_id="7002", advertiser_id="6002"
        )
        for store_id, bc_id in (("8003", "7002"), ("8002", "7001"), ("8001", "7001")):
            await add_store(session, binding=binding, store_id=store_id, bc_id=bc_id)
        for advertiser_id, bc_id in (("6003", "7002"), ("6002", "7001")):
            await add_advertiser(
                session, binding=binding, advertiser_id=advertiser_id, bc_id=bc_id
            )
        await add_advertiser(
            session, binding=binding, advertiser_id="6001", bc_id="7001"
        )
        await add_business_center(session, binding=binding, bc_id="7002")
        await add_business_center(session, binding=binding, bc_id="7001")

    again = await rebuild(sessionmaker, binding, run_id=2)

    assert again == RebuildResult(changed=False, etag=first.etag, version=1)
    assert (await stored(sessionmaker, binding)).body == body


async def test_alias_and_status_edits_change_the_etag_and_keep_the_sync_origin(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    finished = datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC)
    async with sessionmaker.begin() as session:
        first = await rebuild_options(
            session,
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            run_id=9,
            synced_at=finished,
            topic_prefix=PREFIX,
        )
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Binding)
            .where(Binding.id == binding.id)
            .values(alias="Renamed", status="needs_reauth")
        )

    second = await rebuild(sessionmaker, binding)

    assert second.changed
    assert second.etag != first.etag
    assert second.version == 2
    document = orjson.loads((await stored(sessionmaker, binding)).body)
    assert (document["alias"], document["status"]) == ("Renamed", "needs_reauth")
    assert document["run_id"] == 9
    assert datetime.fromisoformat(document["synced_at"]) == finished


async def test_content_returning_to_an_earlier_state_gets_a_new_etag(
    sessionmaker: Sessions,
) -> None:
    # A strong ETag names one byte string; the version moved on, so the bytes differ.
    binding = await seeded_binding(sessionmaker)
    first = await rebuild(sessionmaker, binding, run_id=1)
    async with sessionmaker.begin() as session:
        await rename_an_advertiser(session, binding)
    await rebuild(sessionmaker, binding, run_id=2)
    async with sessionmaker.begin() as session:
        await session.execute(
            update(Advertiser)
            .where(Advertiser.auth_id == binding.id, Advertiser.advertiser_id == "6002")
            .values(name="Advertiser 6002")
        )

    third = await rebuild(sessionmaker, binding, run_id=3)

    assert third.changed
    assert third.version == 3
    assert third.etag != first.etag


async def test_served_bytes_hash_to_the_etag_and_carry_the_version(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    result = await rebuild(sessionmaker, binding, run_id=3)

    options = await stored(sessionmaker, binding)

    digest = hashlib.sha256(options.body).hexdigest()[:32]
    assert options.etag == result.etag == f'"{digest}"'
    document = orjson.loads(options.body)
    assert document["version"] == options.version == 1
    assert document["run_id"] == options.run_id == 3
    assert options.body == orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    assert gzip.decompress(options.gzip_body) == options.body


async def test_load_options_of_a_binding_without_document_is_none(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)

    async with sessionmaker() as session:
        assert await load_options(session, binding.workspace_id, binding.id) is None


async def test_rebuild_of_another_workspaces_binding_is_binding_not_found(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    async with sessionmaker.begin() as session:
        other = await make_binding(session)

    with pytest.raises(NotFoundError) as raised:
        async with sessionmaker.begin() as session:
            await rebuild_options(
                session,
                workspace_id=other.workspace_id,
                auth_id=binding.id,
                topic_prefix=PREFIX,
            )

    assert raised.value.code == "BINDING_NOT_FOUND"
    async with sessionmaker() as session:
        assert await load_options(session, other.workspace_id, binding.id) is None


def stored_with_etag(etag: str) -> StoredOptions:
    return StoredOptions(
        workspace_id=1,
        auth_id=2,
        body=b"{}",
        gzip_body=gzip.compress(b"{}"),
        etag=etag,
        version=1,
        run_id=None,
        synced_at=None,
        built_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"zzz", "abc"', True),
        ("*", True),
        ('"zzz"', False),
        ("abc", False),
        ("", False),
        (None, False),
    ],
)
def test_if_none_match_names_the_document(header: str | None, matches: bool) -> None:
    assert stored_with_etag('"abc"').matches(header) is matches


async def test_sync_time_in_another_zone_does_not_make_the_next_rebuild_a_change(
    sessionmaker: Sessions,
) -> None:
    binding = await seeded_binding(sessionmaker)
    singapore = timezone(timedelta(hours=8))
    finished = datetime(2026, 12, 2, 16, 0, 0, 500, tzinfo=singapore)
    async with sessionmaker.begin() as session:
        first = await rebuild_options(
            session,
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            run_id=1,
            synced_at=finished,
            topic_prefix=PREFIX,
        )

    again = await rebuild(sessionmaker, binding, run_id=2)

    assert again == RebuildResult(changed=False, etag=first.etag, version=1)
    document = orjson.loads((await stored(sessionmaker, binding)).body)
    assert document["synced_at"] == "2026-12-02T08:00:00.000500+00:00"
