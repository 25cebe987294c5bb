"""All SQL of the metadata sync. Never commits: the caller owns the transaction.

Upserts are portable (MariaDB and SQLite): read the binding's existing keys and
signatures once, then bulk-insert new rows, bulk-update changed rows by primary key,
bump ``last_seen_at`` of confirmed rows with one ``UPDATE ... WHERE id IN`` per chunk, and
tombstone what disappeared the same way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gmv_common.db.models import (
    Advertiser,
    AdvertiserStoreLink,
    BcAdvertiserLink,
    Binding,
    BusinessCenter,
    Schedule,
    Store,
)
from gmv_metadata_sync.records import link_signature
from gmv_metadata_sync.schemas import ExistingRow, Key

CHUNK = 500
META_TASK_KIND = "ttb.sync.meta"


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one synced table is keyed and how its rows' signatures are read."""

    kind: str
    model: Any
    key_columns: tuple[str, ...]
    # Synced entity tables keep a content_hash; link tables are compared on columns.
    signature_columns: tuple[str, ...] = ("content_hash",)

    def column(self, name: str) -> Any:
        return getattr(self.model, name)

    def fit(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` with strings cut to their column's length (TikTok sets no limit)."""
        columns = self.model.__table__.columns
        fitted = dict(values)
        for name, value in values.items():
            if isinstance(value, str):
                length = getattr(columns[name].type, "length", None)
                if length and len(value) > length:
                    fitted[name] = value[:length]
        return fitted


BUSINESS_CENTERS = TableSpec("business_centers", BusinessCenter, ("bc_id",))
ADVERTISERS = TableSpec("advertisers", Advertiser, ("advertiser_id",))
STORES = TableSpec("stores", Store, ("store_id",))
BC_ADVERTISER_LINKS = TableSpec(
    "bc_advertiser_links",
    BcAdvertiserLink,
    ("bc_id", "advertiser_id"),
    ("relation", "source"),
)
ADVERTISER_STORE_LINKS = TableSpec(
    "advertiser_store_links",
    AdvertiserStoreLink,
    ("advertiser_id", "store_id"),
    ("store_authorized_bc_id", "source"),
)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def load_existing(
    session: AsyncSession, spec: TableSpec, *, workspace_id: int, auth_id: int
) -> dict[Key, ExistingRow]:
    """Every row of the binding in ``spec``'s table, tombstoned ones included."""
    columns = [
        spec.column("id"),
        spec.column("deleted_at"),
        *(spec.column(name) for name in spec.key_columns),
        *(spec.column(name) for name in spec.signature_columns),
    ]
    result = await session.execute(
        select(*columns).where(
            spec.column("workspace_id") == workspace_id,
            spec.column("auth_id") == auth_id,
        )
    )
    existing: dict[Key, ExistingRow] = {}
    key_count = len(spec.key_columns)
    for row in result.all():
        values = tuple(row)
        key = tuple(str(value) for value in values[2 : 2 + key_count])
        signed = values[2 + key_count :]
        if spec.signature_columns == ("content_hash",):
            row_signature = signed[0]
        else:
            row_signature = link_signature(*signed)
        existing[key] = ExistingRow(
            id=int(values[0]), signature=row_signature, deleted=values[1] is not None
        )
    return existing


async def insert_rows(
    session: AsyncSession, spec: TableSpec, rows: Sequence[dict[str, Any]]
) -> None:
    for chunk in _chunks(rows):
        await session.execute(insert(spec.model), list(chunk))


async def update_rows(
    session: AsyncSession, spec: TableSpec, rows: Sequence[dict[str, Any]]
) -> None:
    """Bulk UPDATE by primary key; every dict carries ``id``."""
    for chunk in _chunks(rows):
        await session.execute(
            update(spec.model).execution_options(synchronize_session=False),
            list(chunk),
        )


async def set_by_ids(
    session: AsyncSession, spec: TableSpec, ids: Sequence[int], **values: Any
) -> None:
    """The same values on many rows: one ``UPDATE ... WHERE id IN`` per chunk."""
    for chunk in _chunks(list(ids)):
        await session.execute(
            update(spec.model)
            .where(spec.column("id").in_(chunk))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def live_links_by_advertiser(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> dict[str, set[str]]:
    """advertiser_id → business centers it is linked to (tombstoned links excluded)."""
    result = await session.execute(
        select(BcAdvertiserLink.advertiser_id, BcAdvertiserLink.bc_id).where(
            BcAdvertiserLink.workspace_id == workspace_id,
            BcAdvertiserLink.auth_id == auth_id,
            BcAdvertiserLink.deleted_at.is_(None),
        )
    )
    links: dict[str, set[str]] = defaultdict(set)
    for advertiser_id, bc_id in result.all():
        links[advertiser_id].add(bc_id)
    return links


async def lock_binding(session: AsyncSession, binding_id: int) -> Binding | None:
    """The binding row, locked until the caller's transaction ends."""
    binding: Binding | None = await session.scalar(
        select(Binding).where(Binding.id == binding_id).with_for_update()
    )
    return binding


# Schedules


async def find_meta_schedule(
    session: AsyncSession, *, workspace_id: int, auth_id: int
) -> Schedule | None:
    schedule: Schedule | None = await session.scalar(
        select(Schedule).where(
            Schedule.workspace_id == workspace_id,
            Schedule.auth_id == auth_id,
            Schedule.task_kind == META_TASK_KIND,
        )
    )
    return schedule


async def insert_meta_schedule(
    session: AsyncSession,
    *,
    workspace_id: int,
    auth_id: int,
    interval_seconds: int,
    next_fire_at: datetime,
) -> bool:
    """Create the binding's meta schedule; False when another process created it first."""
    try:
        async with session.begin_nested():
            await session.execute(
                insert(Schedule).values(
                    workspace_id=workspace_id,
                    auth_id=auth_id,
                    task_kind=META_TASK_KIND,
                    params={},
                    interval_seconds=interval_seconds,
                    enabled=True,
                    next_fire_at=next_fire_at,
                )
            )
    except IntegrityError:
        return False
    return True


async def active_bindings_without_meta_schedule(
    session: AsyncSession, *, limit: int
) -> list[tuple[int, int]]:
    """(workspace_id, auth_id) of active bindings that have no meta schedule yet."""
    scheduled = select(Schedule.id).where(
        Schedule.workspace_id == Binding.workspace_id,
        Schedule.auth_id == Binding.id,
        Schedule.task_kind == META_TASK_KIND,
    )
    result = await session.execute(
        select(Binding.workspace_id, Binding.id)
        .where(Binding.status == "active", ~scheduled.exists())
        .order_by(Binding.id)
        .limit(limit)
    )
    return [(int(w), int(a)) for w, a in result.all()]


async def due_meta_schedules(
    session: AsyncSession, *, now: datetime, limit: int
) -> list[tuple[int, datetime]]:
    """(id, next_fire_at) of enabled meta schedules that are due."""
    result = await session.execute(
        select(Schedule.id, Schedule.next_fire_at)
        .where(
            Schedule.enabled.is_(True),
            Schedule.task_kind == META_TASK_KIND,
            Schedule.next_fire_at <= now,
        )
        .order_by(Schedule.next_fire_at, Schedule.id)
        .limit(limit)
    )
    return [(int(schedule_id), fire_at) for schedule_id, fire_at in result.all()]


async def claim_schedule_firing(
    session: AsyncSession,
    schedule_id: int,
    *,
    expected_fire_at: datetime,
    now: datetime,
) -> Schedule | None:
    """Advance a due schedule by one interval if nobody else did; None if we lost.

    The conditional update on ``next_fire_at`` is what lets several schedulers run: only
    the one whose update matched the old value fires.
    """
    schedule: Schedule | None = await session.get(Schedule, schedule_id)
    if schedule is None:
        return None
    result: Any = await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.next_fire_at == expected_fire_at)
        .values(
            next_fire_at=_next_fire(expected_fire_at, schedule.interval_seconds, now),
            last_fired_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    await session.refresh(schedule)
    return schedule


def _next_fire(previous: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The first slot after ``now`` on the schedule's grid (missed slots are skipped)."""
    interval = max(1, interval_seconds)
    behind = (now - previous).total_seconds()
    steps = int(behind // interval) + 1 if behind >= 0 else 1
    return previous + timedelta(seconds=steps * interval)


async def set_schedule_last_run(
    session: AsyncSession, schedule_id: int, run_id: int
) -> None:
    await session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id)
        .values(last_run_id=run_id)
        .execution_options(synchronize_session=False)
    )


async def binding_status(session: AsyncSession, *, auth_id: int) -> str | None:
    status: str | None = await session.scalar(
        select(Binding.status).where(Binding.id == auth_id)
    )
    return status


# Repair


def _needs_repair(workspace_id: int | None, auth_id: int | None) -> list[Any]:
    missing = or_(
        Advertiser.name.is_(None),
        Advertiser.name == "",
        Advertiser.timezone.is_(None),
        Advertiser.timezone == "",
        Advertiser.bc_id.is_(None),
        Advertiser.bc_id == "",
    )
    filters = [Advertiser.deleted_at.is_(None), missing]
    if workspace_id is not None:
        filters.append(Advertiser.workspace_id == workspace_id)
    if auth_id is not None:
        filters.append(Advertiser.auth_id == auth_id)
    return filters


async def bindings_needing_repair(
    session: AsyncSession, *, workspace_id: int | None, auth_id: int | None
) -> list[tuple[int, int, int]]:
    """(workspace_id, auth_id, advertisers to repair) per binding, in order."""
    result = await session.execute(
        select(Advertiser.workspace_id, Advertiser.auth_id, func.count())
        .where(and_(*_needs_repair(workspace_id, auth_id)))
        .group_by(Advertiser.workspace_id, Advertiser.auth_id)
        .order_by(Advertiser.workspace_id, Advertiser.auth_id)
    )
    return [(int(w), int(a), int(n)) for w, a, n in result.all()]


async def advertisers_needing_repair(
    session: AsyncSession, *, workspace_id: int | None, auth_id: int | None
) -> list[Advertiser]:
    """Live advertisers missing a name, a timezone or a business center (NULL or empty)."""
    filters = _needs_repair(workspace_id, auth_id)
    result = await session.scalars(
        select(Advertiser)
        .where(and_(*filters))
        .order_by(Advertiser.workspace_id, Advertiser.auth_id, Advertiser.advertiser_id)
    )
    return list(result)
