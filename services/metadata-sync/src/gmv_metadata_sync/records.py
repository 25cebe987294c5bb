"""From what TikTok said to the rows we keep: typed columns, raw JSON, signatures, links.

Pure functions, no I/O. Empty upstream strings become NULL. A row's ``signature`` (stored
as ``content_hash``) covers every column the sync writes, so an unchanged row is detected
without comparing columns one by one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from gmv_common.tiktok import AdvertiserInfo, AuthorizedAdvertiser
from gmv_metadata_sync.schemas import (
    RELATION_RANK,
    SOURCE_ADVERTISER_INFO,
    SOURCE_STORE_LIST,
    Key,
    Record,
    UpstreamSnapshot,
)

Evidence = dict[tuple[str, str], tuple[str, str]]
"""(bc_id, advertiser_id) → (relation, source): the strongest evidence of the run."""


def clean(value: Any) -> Any:
    """Upstream value as stored: strings stripped, empty strings as NULL."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def signature(values: Mapping[str, Any]) -> str:
    encoded = orjson.dumps(
        dict(values), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    )
    return hashlib.sha256(encoded).hexdigest()


def _record(key: Key, values: dict[str, Any]) -> Record:
    return Record(key=key, values=values, signature=signature(values))


def business_center_records(snapshot: UpstreamSnapshot) -> dict[Key, Record]:
    records: dict[Key, Record] = {}
    for center in snapshot.business_centers:
        info = center.bc_info
        values = {
            "bc_id": center.bc_id,
            "name": clean(info.name),
            "company": clean(info.company),
            "status": clean(info.status),
            "timezone": clean(info.timezone),
            "country_code": clean(info.registered_area),
            "currency": clean(info.currency),
            "user_role": clean(center.user_role),
            "raw_json": center.raw,
        }
        records[(center.bc_id,)] = _record((center.bc_id,), values)
    return records


def link_evidence(snapshot: UpstreamSnapshot) -> Evidence:
    """Business center ↔ advertiser relations this run learned, strongest kept.

    ``owner`` comes from ``advertiser/info``'s ``owner_bc_id``; ``store_authorized`` from
    the authorized center of a store the advertiser can use. Nothing ties an advertiser to
    a center merely because the binding can see that center.
    """
    evidence: Evidence = {}

    def learn(
        bc_id: str | None, advertiser_id: str, relation: str, source: str
    ) -> None:
        bc_id = clean(bc_id)
        if not bc_id:
            return
        key = (bc_id, advertiser_id)
        current = evidence.get(key)
        if current is None or RELATION_RANK[relation] > RELATION_RANK[current[0]]:
            evidence[key] = (relation, source)

    for advertiser_id, info in snapshot.infos.items():
        learn(info.owner_bc_id, advertiser_id, "owner", SOURCE_ADVERTISER_INFO)
    for advertiser_id, read in snapshot.stores.items():
        for store in read.stores:
            learn(
                store.store_authorized_bc_id,
                advertiser_id,
                "store_authorized",
                SOURCE_STORE_LIST,
            )
    return evidence


def bc_advertiser_link_records(evidence: Evidence) -> dict[Key, Record]:
    return {
        key: Record(
            key=key,
            values={
                "bc_id": key[0],
                "advertiser_id": key[1],
                "relation": relation,
                "source": source,
            },
            signature=link_signature(relation, source),
        )
        for key, (relation, source) in evidence.items()
    }


def link_signature(*parts: str | None) -> str:
    return "|".join(part or "" for part in parts)


def choose_bc_id(owner_bc_id: str | None, candidates: Iterable[str]) -> str | None:
    """``owner_bc_id``, else the single candidate center, else NULL."""
    if owner_bc_id:
        return owner_bc_id
    unique = set(candidates)
    return unique.pop() if len(unique) == 1 else None


def candidate_centers(
    snapshot: UpstreamSnapshot,
    evidence: Evidence,
    live_links: Mapping[str, set[str]],
    complete_advertisers: set[str],
) -> dict[str, set[str]]:
    """Centers each advertiser is linked to after this run.

    For an advertiser whose evidence is incomplete, the links already stored still count.
    """
    candidates: dict[str, set[str]] = defaultdict(set)
    for bc_id, advertiser_id in evidence:
        candidates[advertiser_id].add(bc_id)
    for advertiser_id in snapshot.advertiser_ids:
        if advertiser_id not in complete_advertisers:
            candidates[advertiser_id] |= live_links.get(advertiser_id, set())
    return candidates


def advertiser_records(
    snapshot: UpstreamSnapshot,
    candidates: Mapping[str, set[str]],
    *,
    hydrated_at: datetime,
) -> dict[Key, Record]:
    records: dict[Key, Record] = {}
    for advertiser in snapshot.advertisers:
        key = (advertiser.advertiser_id,)
        info = snapshot.infos.get(advertiser.advertiser_id)
        found = candidates.get(advertiser.advertiser_id, set())
        if info is None:
            records[key] = _unhydrated_advertiser(advertiser, found)
            continue
        values = _hydrated_values(advertiser, info, found)
        record = _record(key, values)
        record.values["hydrated_at"] = hydrated_at
        records[key] = record
    return records


def _hydrated_values(
    advertiser: AuthorizedAdvertiser, info: AdvertiserInfo, candidates: set[str]
) -> dict[str, Any]:
    owner_bc_id = clean(info.owner_bc_id)
    return {
        "advertiser_id": advertiser.advertiser_id,
        "bc_id": choose_bc_id(owner_bc_id, candidates),
        "owner_bc_id": owner_bc_id,
        "name": clean(info.name) or clean(advertiser.advertiser_name),
        "display_name": clean(advertiser.advertiser_name),
        "company": clean(info.company),
        "status": clean(info.status),
        "role": clean(info.role),
        "industry": clean(info.industry),
        "currency": clean(info.currency),
        "timezone": clean(info.timezone),
        "display_timezone": clean(info.display_timezone),
        "country_code": clean(info.country),
        "ext_create_time": epoch_to_datetime(info.create_time),
        "raw_json": {"oauth": advertiser.raw, "info": info.raw},
    }


def _unhydrated_advertiser(
    advertiser: AuthorizedAdvertiser, candidates: set[str]
) -> Record:
    """An advertiser whose ``advertiser/info`` failed: inserted if new, never rewritten."""
    values = {
        "advertiser_id": advertiser.advertiser_id,
        "bc_id": choose_bc_id(None, candidates),
        "name": clean(advertiser.advertiser_name),
        "display_name": clean(advertiser.advertiser_name),
        "raw_json": {"oauth": advertiser.raw},
    }
    return Record(key=(advertiser.advertiser_id,), values=values, signature=None)


def epoch_to_datetime(seconds: int | None) -> datetime | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def store_records(snapshot: UpstreamSnapshot) -> dict[Key, Record]:
    """Stores as seen by the lowest advertiser id that can use them (deterministic)."""
    records: dict[Key, Record] = {}
    for advertiser_id in sorted(snapshot.stores):
        read = snapshot.stores[advertiser_id]
        for store in read.stores:
            key = (store.store_id,)
            if key in records:
                continue
            gmv_max = read.gmv_max.get(store.store_id)
            authorized = clean(store.store_authorized_bc_id)
            if authorized is None and gmv_max is not None:
                authorized = clean(gmv_max.store_authorized_bc_id)
            values = {
                "store_id": store.store_id,
                "name": clean(store.store_name)
                or (clean(gmv_max.store_name) if gmv_max else None),
                "store_type": clean(store.store_type),
                "store_code": clean(store.store_code),
                "store_authorized_bc_id": authorized,
                "bc_id": authorized,
                "status": clean(gmv_max.store_status) if gmv_max else None,
                "region_codes": list(store.targeting_region_codes) or None,
                "gmv_max_available": gmv_max.is_gmv_max_available if gmv_max else None,
                "raw_json": {
                    "store_list": store.raw,
                    "gmv_max": gmv_max.raw if gmv_max else None,
                },
            }
            records[key] = _record(key, values)
    return records


def advertiser_store_link_records(snapshot: UpstreamSnapshot) -> dict[Key, Record]:
    records: dict[Key, Record] = {}
    for advertiser_id, read in snapshot.stores.items():
        for store in read.stores:
            key = (advertiser_id, store.store_id)
            authorized = clean(store.store_authorized_bc_id)
            records[key] = Record(
                key=key,
                values={
                    "advertiser_id": advertiser_id,
                    "store_id": store.store_id,
                    "store_authorized_bc_id": authorized,
                    "source": SOURCE_STORE_LIST,
                },
                signature=link_signature(authorized, SOURCE_STORE_LIST),
            )
    return records
