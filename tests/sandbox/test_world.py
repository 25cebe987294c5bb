"""The generated world: determinism, shape knobs, laziness and mutations."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import replace

import pytest
from sandbox_support import SMALL_SPEC

from gmv_sandbox import (
    CUSTOM_SHOP_ADS,
    GMV_MAX,
    InvalidChange,
    SandboxState,
    UnknownObject,
    World,
    WorldSpec,
)
from gmv_sandbox.world import ProductQuery


def _everything(world: World) -> tuple[object, ...]:
    products = [
        (p.item_group_id, p.title, p.min_price, p.max_price, p.status, p.salt)
        for store in world.stores.values()
        for p in world.products_of(store)
    ]
    return (
        [vars_of(c) for c in world.business_centers.values()],
        [vars_of(a) for a in world.advertisers.values()],
        [(s.store_id, s.store_name, s.advertiser_ids) for s in world.stores.values()],
        products,
    )


def vars_of(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}  # type: ignore[attr-defined]


def test_same_seed_builds_the_same_world() -> None:
    assert _everything(World.generate(SMALL_SPEC)) == _everything(
        World.generate(SMALL_SPEC)
    )


def test_another_seed_builds_another_world() -> None:
    first = World.generate(SMALL_SPEC)
    second = World.generate(replace(SMALL_SPEC, seed=SMALL_SPEC.seed + 1))

    assert set(first.advertisers).isdisjoint(second.advertisers)


def test_size_knobs_are_respected() -> None:
    spec = WorldSpec(
        seed=3,
        business_centers=4,
        advertisers=200,
        stores_per_advertiser=3,
        products_per_store=7,
        multi_bc_advertiser_share=0.25,
        orphan_advertiser_share=0.1,
    )
    stats = World.generate(spec).stats()

    assert stats["business_centers"] == 4
    assert stats["advertisers"] == 200
    assert stats["stores"] == 600
    assert stats["products"] == 600 * 7
    assert 5 <= stats["orphan_advertisers"] <= 40
    assert 20 <= stats["multi_bc_advertisers"] <= 80


def test_ids_are_unique_nineteen_digit_strings() -> None:
    world = World.generate(SMALL_SPEC)
    ids = [
        *world.business_centers,
        *world.advertisers,
        *world.stores,
        *(p.item_group_id for s in world.stores.values() for p in world.products_of(s)),
    ]

    assert all(isinstance(i, str) and len(i) == 19 and i.isdigit() for i in ids)
    assert len(set(ids)) == len(ids)


def test_orphans_have_no_owner_and_multi_bc_advertisers_have_partners() -> None:
    world = World.generate(SMALL_SPEC)
    orphans = [a for a in world.advertisers.values() if a.owner_bc_id is None]
    multi = [a for a in world.advertisers.values() if a.partner_bc_ids]

    assert orphans
    assert multi
    assert all(a.owner_bc_id not in a.partner_bc_ids for a in multi)
    store_centers = {
        s.store_authorized_bc_id
        for a in multi
        for s in world.stores_of(a.advertiser_id)
    }
    assert store_centers & {bc for a in multi for bc in a.partner_bc_ids}


def test_prices_are_strings_with_min_at_most_max() -> None:
    world = World.generate(SMALL_SPEC)
    products = [p for s in world.stores.values() for p in world.products_of(s)]

    assert all(isinstance(p.min_price, str) for p in products)
    assert all(float(p.min_price) <= float(p.max_price) for p in products)
    assert {p.status for p in products} == {"AVAILABLE", "NOT_AVAILABLE"}


def test_eligibility_differs_between_advertisers_of_a_shared_store() -> None:
    world = World.generate(SMALL_SPEC)
    shared = next(s for s in world.stores.values() if len(s.advertiser_ids) > 1)
    first, second = shared.advertiser_ids[:2]

    def eligible(advertiser_id: str) -> list[str]:
        query = ProductQuery(advertiser_id=advertiser_id, ad_creation_eligible=GMV_MAX)
        return [p.item_group_id for p in world.select_products(shared, query)]

    assert eligible(first) != eligible(second)


def test_reading_products_never_materializes_a_store() -> None:
    world = World.generate(SMALL_SPEC)
    for store in world.stores.values():
        world.select_products(store, ProductQuery(ad_creation_eligible=CUSTOM_SHOP_ADS))

    assert world.stats()["materialized_stores"] == 0


def test_a_product_mutation_materializes_only_its_store() -> None:
    world = World.generate(SMALL_SPEC)
    store = next(s for s in world.stores.values() if world.product_count(s) > 0)
    before = [p.title for p in world.products_of(store)]
    product = world.products_of(store)[0]

    world.update_product(store.store_id, product.item_group_id, title="Renamed")

    after = [p.title for p in world.products_of(store)]
    assert after == ["Renamed", *before[1:]]
    assert world.stats()["materialized_stores"] == 1
    assert world.revision == 1


def test_set_eligibility_overrides_the_hash_for_one_advertiser() -> None:
    world = World.generate(SMALL_SPEC)
    store = next(s for s in world.stores.values() if world.product_count(s) > 0)
    advertiser_id = store.advertiser_ids[0]
    product = world.products_of(store)[0]
    query = ProductQuery(advertiser_id=advertiser_id, ad_creation_eligible=GMV_MAX)

    world.set_eligibility(
        store.store_id,
        product.item_group_id,
        ad_creation_eligible=GMV_MAX,
        eligible=False,
        advertiser_id=advertiser_id,
    )
    without = {p.item_group_id for p in world.select_products(store, query)}
    world.set_eligibility(
        store.store_id,
        product.item_group_id,
        ad_creation_eligible=GMV_MAX,
        eligible=True,
        advertiser_id=advertiser_id,
    )
    with_it = {p.item_group_id for p in world.select_products(store, query)}

    assert product.item_group_id not in without
    assert product.item_group_id in with_it


def test_removing_an_advertiser_drops_stores_only_it_used() -> None:
    world = World.generate(SMALL_SPEC)
    advertiser = next(
        a
        for a in world.advertisers.values()
        if any(len(world.stores[s].advertiser_ids) == 1 for s in a.store_ids)
    )
    own = [s for s in advertiser.store_ids if len(world.stores[s].advertiser_ids) == 1]

    world.remove_advertiser(advertiser.advertiser_id)

    assert advertiser.advertiser_id not in world.advertisers
    assert all(store_id not in world.stores for store_id in own)


def test_a_business_center_in_use_by_stores_cannot_be_removed() -> None:
    world = World.generate(SMALL_SPEC)
    bc_id = next(iter(world.stores.values())).store_authorized_bc_id

    with pytest.raises(InvalidChange):
        world.remove_business_center(bc_id)


def test_unknown_fields_and_enum_values_are_refused() -> None:
    world = World.generate(SMALL_SPEC)
    advertiser_id = next(iter(world.advertisers))

    with pytest.raises(InvalidChange):
        world.update_advertiser(advertiser_id, colour="red")
    with pytest.raises(InvalidChange):
        world.update_advertiser(advertiser_id, status="STATUS_SLEEPING")
    with pytest.raises(UnknownObject):
        world.update_advertiser("1" * 19, name="x")


def test_spec_refuses_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="business center"):
        WorldSpec(business_centers=0, advertisers=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        WorldSpec(orphan_advertiser_share=1.5)


def test_large_world_is_cheap_to_create() -> None:
    spec = WorldSpec(
        seed=5,
        business_centers=25,
        advertisers=1_000,
        stores_per_advertiser=2,
        products_per_store=50,
    )

    started = time.perf_counter()
    state = SandboxState.generate(spec)
    created = time.perf_counter() - started
    tracemalloc.start()
    World.generate(spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    started = time.perf_counter()
    generated = sum(
        len(state.world.products_of(s)) for s in state.world.stores.values()
    )
    all_products = time.perf_counter() - started

    stats = state.world_stats()
    assert stats["advertisers"] == 1_000
    assert stats["products"] == 100_000
    assert generated == 100_000
    print(
        f"\n1,000 advertisers / 2,000 stores / 100,000 products: created in "
        f"{created * 1000:.0f} ms, peak {peak / 1e6:.1f} MB traced; generating every "
        f"product once took {all_products * 1000:.0f} ms"
    )
