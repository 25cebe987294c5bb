"""The GMV Max options document of a binding: build, version, store, load.

What the document holds: the binding's live business centers, advertisers and stores, the
``links`` between them (each map lists every live id of its kind, values sorted), the binding's
``alias`` and ``status``, and three fields that describe the content's origin: ``version``,
``synced_at`` and ``run_id``. Tombstoned rows are left out, and so are links whose ends are not
both live, so every id in ``links`` resolves to an entry of a list.

How "same content, same ETag" holds although the document carries a version:

- The *content* is everything but ``version``, ``synced_at`` and ``run_id``. A rebuild builds
  the content from the database and renders it with the stored document's origin fields: if
  that gives the stored bytes, the content is the same (and only then).
- Equal content: nothing is written, no event is sent; the stored bytes, ETag and version stay.
  A replayed or repeated sync event therefore changes nothing.
- Different content: ``version`` becomes the stored version + 1; ``run_id`` and ``synced_at``
  become the run and ``finished_at`` of the sync that prompted the rebuild. A change that no
  sync prompted (alias or status edit, ``gmv options rebuild``) keeps the stored run and time,
  since the synced data is still that sync's (a first document takes the binding's
  ``last_meta_sync_at``; ``null`` if it never synced). Then the whole document is serialized
  and the ETag is the hash of exactly those bytes.

So ``synced_at`` means "the sync that produced this content", not "the last sync that checked
it". The served bytes and the ETag are one-to-one: the gateway serves ``StoredOptions.body``
as-is under ``StoredOptions.etag`` and adds nothing, and a strong ETag never names two different
byte strings (content going A → B → A gets a third ETag, because its version moved on).

Serialization is deterministic: orjson with sorted keys, every list sorted by id (string order,
like the keys).
The ETag is ``"`` + the first 32 hex digits of the SHA-256 of the bytes + ``"``.

Storage: ``gmvmax_options.document`` holds the document gzip-compressed (a 1,000-advertiser
binding: about 1 MB of JSON, 80 KB stored). Writing and reading a tenth of the bytes is what
keeps a rebuild fast on MariaDB, where the driver escapes every byte of a parameter in Python.
``load_options`` returns both forms: ``body`` (the JSON the ETag hashes) and ``gzip_body``
(ready for a client that sends ``Accept-Encoding: gzip``).
"""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.base import utcnow
from gmv_common.db.models import GmvMaxOptions
from gmv_common.errors import NotFoundError
from gmv_common.events.schemas import (
    BindingChanged,
    OptionsUpdated,
    SyncCompleted,
    SyncFailed,
)
from gmv_common.logging import get_logger
from gmv_common.messaging.outbox import enqueue
from gmv_options_cache import repository
from gmv_options_cache.repository import BindingSnapshot, BindingState
from gmv_options_cache.schemas import RebuildResult, StoredOptions

log = get_logger(__name__)

GZIP_LEVEL = 1


def serialize(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def pack(body: bytes) -> bytes:
    """What is stored: gzip at a fast level, without a timestamp (same bytes, same result)."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def unpack(stored: bytes) -> bytes:
    return gzip.decompress(stored)


def etag_for(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def build_content(binding: BindingState, snapshot: BindingSnapshot) -> dict[str, Any]:
    """The document without its origin fields, as JSON-ready values."""
    bcs = sorted(snapshot.business_centers, key=itemgetter("bc_id"))
    advertisers = sorted(snapshot.advertisers, key=itemgetter("advertiser_id"))
    stores = sorted(snapshot.stores, key=itemgetter("store_id"))
    for store in stores:
        # Booleans arrive as 0/1 from both databases.
        available = store["gmv_max_available"]
        store["gmv_max_available"] = None if available is None else bool(available)
    return {
        "workspace_id": binding.workspace_id,
        "auth_id": binding.auth_id,
        "alias": binding.alias,
        "status": binding.status,
        "bcs": bcs,
        "advertisers": advertisers,
        "stores": stores,
        "links": _links(bcs, advertisers, stores, snapshot),
    }


def _links(
    bcs: list[dict[str, Any]],
    advertisers: list[dict[str, Any]],
    stores: list[dict[str, Any]],
    snapshot: BindingSnapshot,
) -> dict[str, dict[str, list[str]]]:
    bc_ids = {item["bc_id"] for item in bcs}
    advertiser_ids = {item["advertiser_id"] for item in advertisers}
    store_ids = {item["store_id"] for item in stores}

    bc_to_advertisers: dict[str, set[str]] = {bc_id: set() for bc_id in bc_ids}
    # An advertiser's own center counts even when no link row was recorded for it.
    filed_under = [[item["bc_id"], item["advertiser_id"]] for item in advertisers]
    for bc_id, advertiser_id in filed_under + snapshot.bc_advertiser_links:
        if bc_id in bc_ids and advertiser_id in advertiser_ids:
            bc_to_advertisers[bc_id].add(advertiser_id)

    advertiser_to_stores: dict[str, set[str]] = {a: set() for a in advertiser_ids}
    store_to_advertisers: dict[str, set[str]] = {s: set() for s in store_ids}
    for advertiser_id, store_id in snapshot.advertiser_store_links:
        if advertiser_id in advertiser_ids and store_id in store_ids:
            advertiser_to_stores[advertiser_id].add(store_id)
            store_to_advertisers[store_id].add(advertiser_id)

    return {
        "bc_to_advertisers": _sorted_map(bc_to_advertisers),
        "advertiser_to_stores": _sorted_map(advertiser_to_stores),
        "store_to_advertisers": _sorted_map(store_to_advertisers),
    }


def _sorted_map(mapping: dict[str, set[str]]) -> dict[str, list[str]]:
    return {key: sorted(mapping[key]) for key in sorted(mapping)}


def render(
    content: dict[str, Any],
    *,
    version: int,
    synced_at: datetime | None,
    run_id: int | None,
) -> bytes:
    """The document's bytes: the content plus its origin fields."""
    if synced_at is not None:
        synced_at = synced_at.astimezone(UTC)
    return serialize(
        {**content, "version": version, "synced_at": synced_at, "run_id": run_id}
    )


async def rebuild_options(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    run_id: int | None = None,
    topic_prefix: str,
    synced_at: datetime | None = None,
) -> RebuildResult:
    """Rebuild one binding's document; store it and emit ``OptionsUpdated`` if it changed.

    Raises ``NotFoundError`` (``BINDING_NOT_FOUND``) when the binding does not exist in
    ``workspace_id``. ``run_id`` and ``synced_at`` name the sync that prompted the rebuild.
    """
    binding = await repository.lock_binding(
        session, workspace_id=workspace_id, auth_id=auth_id
    )
    if binding is None:
        raise NotFoundError(
            "binding not found",
            code="BINDING_NOT_FOUND",
            details={"workspace_id": workspace_id, "auth_id": auth_id},
        )
    snapshot = await repository.load_snapshot(
        session, workspace_id=workspace_id, auth_id=auth_id
    )
    content = build_content(binding, snapshot)
    stored = await repository.get_options(
        session, workspace_id=workspace_id, auth_id=auth_id
    )

    if stored is not None:
        # Same content under the stored origin renders the stored bytes exactly.
        unchanged = render(
            content,
            version=stored.version,
            synced_at=stored.synced_at,
            run_id=stored.run_id,
        )
        if unchanged == unpack(stored.document):
            log.info("options.unchanged", version=stored.version, etag=stored.etag)
            return RebuildResult(
                changed=False, etag=stored.etag, version=stored.version
            )

    run_id, synced_at = _origin(run_id, synced_at, stored, binding)
    version = stored.version + 1 if stored is not None else 1
    body = render(content, version=version, synced_at=synced_at, run_id=run_id)
    return await _store_changed(
        session,
        stored,
        binding,
        body=body,
        version=version,
        run_id=run_id,
        synced_at=synced_at,
        topic_prefix=topic_prefix,
        counts={key: len(content[key]) for key in ("bcs", "advertisers", "stores")},
    )


def _origin(
    run_id: int | None,
    synced_at: datetime | None,
    stored: GmvMaxOptions | None,
    binding: BindingState,
) -> tuple[int | None, datetime | None]:
    """The run and time a changed document names as its origin."""
    if run_id is not None or synced_at is not None:
        return run_id, synced_at or binding.last_meta_sync_at
    if stored is not None:
        # Not prompted by a sync (alias, status, a manual rebuild): the synced data is
        # still that of the last sync known, so its origin stays.
        return stored.run_id, stored.synced_at
    return None, binding.last_meta_sync_at


async def _store_changed(
    session: AsyncSession,
    stored: GmvMaxOptions | None,
    binding: BindingState,
    *,
    body: bytes,
    version: int,
    run_id: int | None,
    synced_at: datetime | None,
    topic_prefix: str,
    counts: dict[str, int],
) -> RebuildResult:
    etag = etag_for(body)
    await repository.save_options(
        session,
        stored,
        workspace_id=binding.workspace_id,
        auth_id=binding.auth_id,
        document=pack(body),
        etag=etag,
        version=version,
        run_id=run_id,
        synced_at=synced_at,
        built_at=utcnow(),
    )
    enqueue(
        session,
        OptionsUpdated(
            workspace_id=binding.workspace_id,
            auth_id=binding.auth_id,
            etag=etag,
            version=version,
            run_id=run_id,
            synced_at=synced_at,
        ),
        topic_prefix=topic_prefix,
    )
    log.info(
        "options.changed", version=version, etag=etag, size_bytes=len(body), **counts
    )
    return RebuildResult(changed=True, etag=etag, version=version)


async def remove_options(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> bool:
    """Delete a binding's document; True if there was one."""
    removed = await repository.delete_options(
        session, workspace_id=workspace_id, auth_id=auth_id
    )
    if removed:
        log.info("options.removed")
    return removed


async def load_options(
    session: AsyncSession, workspace_id: int, auth_id: int
) -> StoredOptions | None:
    """The stored document of a binding: the exact bytes to serve and their ETag."""
    row = await repository.get_options(
        session, workspace_id=workspace_id, auth_id=auth_id
    )
    if row is None:
        return None
    return StoredOptions(
        workspace_id=row.workspace_id,
        auth_id=row.auth_id,
        body=unpack(row.document),
        gzip_body=row.document,
        etag=row.etag,
        version=row.version,
        run_id=row.run_id,
        synced_at=row.synced_at,
        built_at=row.built_at,
    )


async def apply_sync_event(
    session: AsyncSession, event: SyncCompleted | SyncFailed, *, topic_prefix: str
) -> RebuildResult | None:
    """Rebuild after a metadata sync; a binding that is gone loses its document."""
    return await _rebuild_or_remove(
        session,
        workspace_id=event.workspace_id,
        auth_id=event.auth_id,
        run_id=event.run_id,
        synced_at=event.finished_at,
        topic_prefix=topic_prefix,
    )


async def apply_binding_change(
    session: AsyncSession, event: BindingChanged, *, topic_prefix: str
) -> RebuildResult | None:
    """Alias and status live in the document: rebuild it; a deleted binding: remove it.

    A binding without a document keeps none until its first metadata sync: an empty
    document would hide from the gateway that the first sync is still to come.
    """
    scope = {"workspace_id": event.workspace_id, "auth_id": event.auth_id}
    if event.change == "deleted":
        await remove_options(session, **scope)
        return None
    if not await repository.options_exist(session, **scope):
        log.info("options.no_document_yet", change=event.change)
        return None
    return await _rebuild_or_remove(
        session,
        workspace_id=event.workspace_id,
        auth_id=event.auth_id,
        run_id=None,
        synced_at=None,
        topic_prefix=topic_prefix,
    )


async def _rebuild_or_remove(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    run_id: int | None,
    synced_at: datetime | None,
    topic_prefix: str,
) -> RebuildResult | None:
    try:
        return await rebuild_options(
            session,
            workspace_id=workspace_id,
            auth_id=auth_id,
            run_id=run_id,
            synced_at=synced_at,
            topic_prefix=topic_prefix,
        )
    except NotFoundError:
        log.info("options.binding_gone")
        await remove_options(session, workspace_id=workspace_id, auth_id=auth_id)
        return None
