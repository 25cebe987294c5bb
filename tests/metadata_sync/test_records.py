"""From TikTok answers to rows: NULL for blanks, relation precedence, bc_id choice."""

from __future__ import annotations

from gmv_common.db.base import utcnow
from gmv_common.tiktok import AdvertiserInfo, AuthorizedAdvertiser, Store
from gmv_metadata_sync.records import (
    advertiser_records,
    choose_bc_id,
    clean,
    link_evidence,
    signature,
)
from gmv_metadata_sync.schemas import AdvertiserStores, UpstreamSnapshot


def _snapshot() -> UpstreamSnapshot:
    snapshot = UpstreamSnapshot(
        advertisers=[
            AuthorizedAdvertiser.from_raw(
                {"advertiser_id": "1", "advertiser_name": "A"}
            ),
            AuthorizedAdvertiser.from_raw(
                {"advertiser_id": "2", "advertiser_name": ""}
            ),
        ]
    )
    snapshot.infos["1"] = AdvertiserInfo.from_raw(
        {"advertiser_id": "1", "name": "A", "owner_bc_id": "10", "company": " "}
    )
    snapshot.stores["1"] = AdvertiserStores(
        stores=[
            Store.from_raw({"store_id": "s1", "store_authorized_bc_id": "10"}),
            Store.from_raw({"store_id": "s2", "store_authorized_bc_id": "20"}),
        ],
        gmv_max={},
    )
    snapshot.stores["2"] = AdvertiserStores(
        stores=[Store.from_raw({"store_id": "s2", "store_authorized_bc_id": "20"})],
        gmv_max={},
    )
    return snapshot


def test_blank_strings_become_null() -> None:
    assert [clean(""), clean("  "), clean(" x "), clean(0)] == [None, None, "x", 0]


def test_owner_relation_outranks_store_authorized_for_the_same_center() -> None:
    evidence = link_evidence(_snapshot())

    assert evidence == {
        ("10", "1"): ("owner", "advertiser.info"),
        ("20", "1"): ("store_authorized", "store.list"),
        ("20", "2"): ("store_authorized", "store.list"),
    }


def test_bc_id_is_owner_else_single_candidate_else_null() -> None:
    assert choose_bc_id("10", ["20", "30"]) == "10"
    assert choose_bc_id(None, ["20", "20"]) == "20"
    assert choose_bc_id(None, ["20", "30"]) is None
    assert choose_bc_id(None, []) is None


def test_unhydrated_advertiser_has_no_signature_and_keeps_oauth_name() -> None:
    snapshot = _snapshot()
    candidates = {"1": {"10", "20"}, "2": {"20"}}

    records = advertiser_records(snapshot, candidates, hydrated_at=utcnow())

    hydrated, unhydrated = records[("1",)], records[("2",)]
    assert hydrated.values["bc_id"] == "10"
    assert hydrated.values["company"] is None
    assert hydrated.signature is not None
    assert unhydrated.signature is None
    assert unhydrated.values["bc_id"] == "20"
    assert unhydrated.values["name"] is None


def test_signature_ignores_key_order() -> None:
    assert signature({"a": 1, "b": [1, 2]}) == signature({"b": [1, 2], "a": 1})
    assert signature({"a": 1}) != signature({"a": 2})
