"""Metadata sync business logic: turn an upstream snapshot into rows, links and a diff.

Never commits; the worker owns the transaction, so a run's rows, its final status and
its event are written together or not at all.

``last_seen_at`` means "last confirmed by a run that read this row's source completely";
confirmed rows whose content did not change are not rewritten: only that column is
bumped, with one ``UPDATE ... WHERE id IN (...)`` per 500 rows. Rows that disappeared
upstream are tombstoned (``deleted_at``) only when the read that would have listed them
was complete, and come back (counted as added) when they reappear.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.bindings import mark_active, mark_needs_reauth
from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, SyncRun
from gmv_common.events.schemas import SyncCompleted, SyncFailed
from gmv_common.logging import get_logger
from gmv_common.sync.runs import finish_run
from gmv_metadata_sync import repository
from gmv_metadata_sync.records import (
    advertiser_records,
    advertiser_store_link_records,
    bc_advertiser_link_records,
    business_center_records,
    candidate_centers,
    link_evidence,
    store_records,
)
from gmv_metadata_sync.repository import TableSpec
from gmv_metadata_sync.schemas import (
    EntityDiff,
    ExistingRow,
    Key,
    Record,
    SyncOutcome,
    UpstreamSnapshot,
)

log = get_logger(__name__)

DEFAULT_INTERVAL_SECONDS = 1800

TombstoneScope = Callable[[Key], bool]


async def apply_snapshot(
    session: AsyncSession,
    snapshot: UpstreamSnapshot,
    *,
    workspace_id: int,
    auth_id: int,
    now: datetime,
) -> SyncOutcome:
    """Upsert everything the snapshot holds for the binding; return what changed."""
    scope = {"workspace_id": workspace_id, "auth_id": auth_id}
    upstream_ids = set(snapshot.advertiser_ids)
    stores_read = set(snapshot.stores)
    complete_advertisers = set(snapshot.infos) & stores_read

    evidence = link_evidence(snapshot)
    live_links = await repository.live_links_by_advertiser(session, **scope)
    candidates = candidate_centers(snapshot, evidence, live_links, complete_advertisers)

    def every(_: Key) -> bool:
        return True

    def nothing(_: Key) -> bool:
        return False

    def advertiser_read(fully_read: set[str], position: int) -> TombstoneScope:
        # A link may go only if its advertiser was read in full or is gone upstream.
        def in_scope(key: Key) -> bool:
            advertiser_id = key[position]
            return advertiser_id in fully_read or advertiser_id not in upstream_ids

        return in_scope

    plan: list[tuple[TableSpec, dict[Key, Record], TombstoneScope]] = [
        (
            repository.BUSINESS_CENTERS,
            business_center_records(snapshot),
            every if snapshot.business_centers_complete else nothing,
        ),
        (
            repository.ADVERTISERS,
            advertiser_records(snapshot, candidates, hydrated_at=now),
            every,
        ),
        (
            repository.STORES,
            store_records(snapshot),
            every if snapshot.stores_complete else nothing,
        ),
        (
            repository.BC_ADVERTISER_LINKS,
            bc_advertiser_link_records(evidence),
            advertiser_read(complete_advertisers, 1),
        ),
        (
            repository.ADVERTISER_STORE_LINKS,
            advertiser_store_link_records(snapshot),
            advertiser_read(stores_read, 0),
        ),
    ]
    diffs: dict[str, EntityDiff] = {}
    for spec, records, tombstone_scope in plan:
        existing = await repository.load_existing(session, spec, **scope)
        diffs[spec.kind] = await upsert(
            session,
            spec,
            records,
            existing,
            tombstone_scope=tombstone_scope,
            now=now,
            scope=scope,
        )
    return SyncOutcome(
        diffs=diffs,
        errors=snapshot.errors,
        api_calls=dict(snapshot.api_calls),
        phase_seconds=snapshot.phase_seconds,
    )


async def upsert(
    session: AsyncSession,
    spec: TableSpec,
    records: Mapping[Key, Record],
    existing: Mapping[Key, ExistingRow],
    *,
    tombstone_scope: TombstoneScope,
    now: datetime,
    scope: Mapping[str, int],
) -> EntityDiff:
    """Insert new rows, rewrite changed ones, confirm unchanged ones, tombstone the gone."""
    hashed = spec.signature_columns == ("content_hash",)
    diff = EntityDiff(fetched=len(records))
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    confirmed: list[int] = []

    for key in sorted(records):
        record = records[key]
        row = existing.get(key)
        values = spec.fit(record.values)
        if hashed:
            values["content_hash"] = record.signature
        if row is None:
            inserts.append(
                {**values, **scope, "first_seen_at": now, "last_seen_at": now}
            )
            diff.added.append(key)
        elif row.deleted:
            updates.append(
                {**values, "id": row.id, "last_seen_at": now, "deleted_at": None}
            )
            diff.added.append(key)
        elif record.signature is None or record.signature == row.signature:
            confirmed.append(row.id)
            diff.unchanged += 1
        else:
            updates.append({**values, "id": row.id, "last_seen_at": now})
            diff.updated.append(key)

    gone = [
        (key, row)
        for key, row in sorted(existing.items())
        if key not in records and not row.deleted and tombstone_scope(key)
    ]
    diff.removed.extend(key for key, _ in gone)

    await repository.insert_rows(session, spec, inserts)
    await repository.update_rows(session, spec, updates)
    await repository.set_by_ids(session, spec, confirmed, last_seen_at=now)
    await repository.set_by_ids(
        session, spec, [row.id for _, row in gone], deleted_at=now
    )
    return diff


async def complete_run(
    session: AsyncSession,
    run: SyncRun,
    outcome: SyncOutcome,
    *,
    owner: str,
    topic_prefix: str,
    interval_seconds: int,
) -> SyncRun:
    """Record a succeeded or partial run, reactivate the binding, emit ``SyncCompleted``."""
    binding = await repository.lock_binding(session, run.auth_id)
    if binding is not None:
        await mark_active(session, binding, topic_prefix=topic_prefix)
        binding.last_meta_sync_at = utcnow()
        await ensure_meta_schedule(session, binding, interval_seconds=interval_seconds)
    finished_at = utcnow()
    event = SyncCompleted(
        workspace_id=run.workspace_id,
        auth_id=run.auth_id,
        run_id=run.id,
        scope="meta",
        mode=run.mode,  # type: ignore[arg-type]
        trigger=run.trigger,  # type: ignore[arg-type]
        status=outcome.status,  # type: ignore[arg-type]
        started_at=run.started_at,
        finished_at=finished_at,
        stats=outcome.stats(),
        changes=outcome.changes(),
        errors=[error.as_dict() for error in outcome.errors],
    )
    return await finish_run(
        session,
        run.id,
        owner=owner,
        status=outcome.status,
        stats=outcome.stats(),
        event=event,
        topic_prefix=topic_prefix,
        error_code="PARTIAL_READ" if outcome.errors else None,
        error_message=_partial_summary(outcome),
    )


def _partial_summary(outcome: SyncOutcome) -> str | None:
    if not outcome.errors:
        return None
    parts = [
        f"{error.phase}: {error.code}"
        + (
            f" ({len(error.advertiser_ids)} advertisers)"
            if error.advertiser_ids
            else ""
        )
        for error in outcome.errors
    ]
    return "; ".join(parts)


async def fail_run(
    session: AsyncSession,
    run: SyncRun,
    *,
    owner: str,
    topic_prefix: str,
    error_code: str,
    error_message: str,
    stats: dict[str, Any] | None = None,
    token_invalid: bool = False,
) -> SyncRun:
    """Record a failed run with a stable code; a token problem flags the binding."""
    if token_invalid:
        binding: Binding | None = await repository.lock_binding(session, run.auth_id)
        if binding is not None:
            await mark_needs_reauth(
                session, binding, reason=error_message, topic_prefix=topic_prefix
            )
    event = SyncFailed(
        workspace_id=run.workspace_id,
        auth_id=run.auth_id,
        run_id=run.id,
        scope="meta",
        mode=run.mode,  # type: ignore[arg-type]
        trigger=run.trigger,  # type: ignore[arg-type]
        error_code=error_code,
        error_message=error_message[:1000],
        finished_at=utcnow(),
        stats=stats or {},
    )
    return await finish_run(
        session,
        run.id,
        owner=owner,
        status="failed",
        stats=stats or {},
        event=event,
        topic_prefix=topic_prefix,
        error_code=error_code,
        error_message=error_message,
    )


async def ensure_meta_schedule(
    session: AsyncSession,
    binding: Binding,
    *,
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
) -> bool:
    """Give the binding its ``ttb.sync.meta`` schedule if it has none; True if created.

    The first fire is one interval from now. Safe to call from several processes at once
    (the gateway's OAuth callback, the worker after a first sync).
    """
    existing = await repository.find_meta_schedule(
        session, workspace_id=binding.workspace_id, auth_id=binding.id
    )
    if existing is not None:
        return False
    created = await repository.insert_meta_schedule(
        session,
        workspace_id=binding.workspace_id,
        auth_id=binding.id,
        interval_seconds=interval_seconds,
        next_fire_at=utcnow() + timedelta(seconds=interval_seconds),
    )
    if created:
        log.info(
            "meta_sync.schedule_created",
            workspace_id=binding.workspace_id,
            auth_id=binding.id,
            interval_seconds=interval_seconds,
        )
    return created
