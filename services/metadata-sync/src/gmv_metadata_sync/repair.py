"""Repair of advertisers that lack a name, a timezone or a business center.

Successor of the older ``fix_ttb_advertiser_info.py``: it also catches empty strings
(not only NULL), paces its calls on the app's shared budget (``--qps`` only lowers it),
can run dry, reports per binding and in total, and says when it could not finish.

Per binding, in one transaction: select the live advertisers missing name, timezone or
``bc_id``; read ``advertiser/info`` for them in batches of 100; fill the typed columns
from it (empty strings stay NULL); set ``bc_id`` to ``owner_bc_id``, else to the single
business center the links name. Rerunning it changes nothing once the data is whole.
Repaired rows get ``content_hash`` NULL so the next sync rewrites them in full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import (
    load_binding_credentials,
    mark_needs_reauth,
)
from gmv_common.crypto import Keyring
from gmv_common.db.base import utcnow
from gmv_common.db.models import Advertiser
from gmv_common.errors import GMVError
from gmv_common.logging import get_logger
from gmv_common.tiktok import (
    AdvertiserInfo,
    InMemoryRateLimiter,
    PacerState,
    Priority,
    RateLimiter,
    TikTokAuthError,
    TikTokClient,
    TikTokCredentials,
    TikTokError,
    batched_ids,
)
from gmv_common.tiktok.limiter import Reservation
from gmv_metadata_sync import repository
from gmv_metadata_sync.records import choose_bc_id, clean, epoch_to_datetime
from gmv_metadata_sync.upstream import ADVERTISER_INFO_FIELDS

log = get_logger(__name__)

REPAIRED_COLUMNS = (
    "name",
    "company",
    "status",
    "role",
    "industry",
    "currency",
    "timezone",
    "display_timezone",
    "country_code",
    "owner_bc_id",
    "ext_create_time",
)

ClientFactory = Callable[[str | None], TikTokClient]
Progress = Callable[[int], None]


@dataclass
class BindingRepair:
    workspace_id: int
    auth_id: int
    candidates: int = 0
    batches: int = 0
    updated: int = 0
    bc_backfilled: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace_id": self.workspace_id,
            "auth_id": self.auth_id,
            "candidates": self.candidates,
            "batches": self.batches,
            "updated": self.updated,
            "bc_backfilled": self.bc_backfilled,
            "ok": self.ok,
            "errors": self.errors,
        }


@dataclass
class RepairReport:
    dry_run: bool
    bindings: list[BindingRepair] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(binding.ok for binding in self.bindings)

    def totals(self) -> dict[str, int]:
        return {
            "bindings": len(self.bindings),
            "candidates": sum(b.candidates for b in self.bindings),
            "batches": sum(b.batches for b in self.bindings),
            "updated": sum(b.updated for b in self.bindings),
            "bc_backfilled": sum(b.bc_backfilled for b in self.bindings),
            "failed_bindings": sum(not b.ok for b in self.bindings),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "ok": self.ok,
            "bindings": [binding.as_dict() for binding in self.bindings],
            "totals": self.totals(),
        }


class CappedRateLimiter(RateLimiter):
    """The shared app budget, further capped at ``cap_qps`` for this process."""

    def __init__(self, shared: RateLimiter, cap_qps: float) -> None:
        super().__init__(default_qps=cap_qps, config=shared.config)
        self._shared = shared
        self._cap = InMemoryRateLimiter(default_qps=cap_qps)

    async def acquire(
        self, app_id: str, priority: Priority, *, max_wait: float | None = None
    ) -> float:
        waited = await self._cap.acquire(app_id, priority, max_wait=max_wait)
        return waited + await self._shared.acquire(app_id, priority, max_wait=max_wait)

    async def report_throttled(self, app_id: str) -> None:
        await self._shared.report_throttled(app_id)

    def observe_send_delay(self, app_id: str, delay: float) -> None:
        # The shared pacer widens every process's spacing from these reports.
        self._shared.observe_send_delay(app_id, delay)

    async def set_qps(self, app_id: str, qps: float) -> None:
        await self._shared.set_qps(app_id, qps)

    async def snapshot(self, app_id: str) -> PacerState | None:
        return await self._shared.snapshot(app_id)

    async def _reserve(
        self, app_id: str, priority: Priority, deadline: float
    ) -> Reservation:
        raise NotImplementedError("CappedRateLimiter delegates acquire()")

    async def _apply_throttle(self, app_id: str) -> PacerState:
        raise NotImplementedError("CappedRateLimiter delegates report_throttled()")


async def repair_advertiser_info(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: Keyring,
    *,
    client_factory: ClientFactory,
    limiter: RateLimiter,
    topic_prefix: str,
    workspace_id: int | None = None,
    auth_id: int | None = None,
    dry_run: bool = False,
    on_total: Callable[[int], None] | None = None,
    progress: Progress | None = None,
) -> RepairReport:
    """Repair every binding (or the one/ones the filters name); one transaction each."""
    async with sessionmaker() as session:
        targets = await repository.bindings_needing_repair(
            session, workspace_id=workspace_id, auth_id=auth_id
        )
    if on_total is not None:
        on_total(sum(count for _, _, count in targets))
    report = RepairReport(dry_run=dry_run)
    for target_workspace, target_auth, _ in targets:
        result = BindingRepair(workspace_id=target_workspace, auth_id=target_auth)
        report.bindings.append(result)
        async with sessionmaker() as session:
            try:
                await _repair_binding(
                    session,
                    keyring,
                    result,
                    client_factory=client_factory,
                    limiter=limiter,
                    topic_prefix=topic_prefix,
                    progress=progress,
                )
            except GMVError as exc:
                result.errors.append(f"{exc.code}: {exc.message}"[:300])
                await session.rollback()
            else:
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        log.info("repair.binding_done", **result.as_dict())
    return report


async def _repair_binding(
    session: AsyncSession,
    keyring: Keyring,
    result: BindingRepair,
    *,
    client_factory: ClientFactory,
    limiter: RateLimiter,
    topic_prefix: str,
    progress: Progress | None,
) -> None:
    scope = {"workspace_id": result.workspace_id, "auth_id": result.auth_id}
    advertisers = await repository.advertisers_needing_repair(session, **scope)
    result.candidates = len(advertisers)
    if not advertisers:
        return
    credentials = await load_binding_credentials(session, keyring, **scope)
    await limiter.set_qps(credentials.app.app_id, credentials.app.qps_limit)
    client = client_factory(credentials.app.api_base_url)
    try:
        infos = await _read_infos(
            client, credentials.tiktok, advertisers, result, progress
        )
    except TikTokAuthError as exc:
        await mark_needs_reauth(
            session, credentials.binding, reason=exc.message, topic_prefix=topic_prefix
        )
        result.errors.append(f"{exc.code}: {exc.message}"[:300])
        return
    finally:
        await client.aclose()

    links = await repository.live_links_by_advertiser(session, **scope)
    for advertiser in advertisers:
        changed, inferred = _apply_info(
            advertiser,
            infos.get(advertiser.advertiser_id),
            links.get(advertiser.advertiser_id, set()),
        )
        result.updated += changed
        result.bc_backfilled += inferred
    await session.flush()


async def _read_infos(
    client: TikTokClient,
    credentials: TikTokCredentials,
    advertisers: list[Advertiser],
    result: BindingRepair,
    progress: Progress | None,
) -> dict[str, AdvertiserInfo]:
    infos: dict[str, AdvertiserInfo] = {}
    for batch in batched_ids(a.advertiser_id for a in advertisers):
        result.batches += 1
        try:
            for info in await client.get_advertiser_info(
                credentials,
                batch,
                priority=Priority.BULK,
                fields=ADVERTISER_INFO_FIELDS,
            ):
                infos[info.advertiser_id] = info
        except TikTokAuthError:
            raise
        except TikTokError as exc:
            result.errors.append(f"batch {result.batches}: {exc.code}"[:300])
        if progress is not None:
            progress(len(batch))
    return infos


def _apply_info(
    advertiser: Advertiser, info: AdvertiserInfo | None, linked: set[str]
) -> tuple[bool, bool]:
    """Fill the advertiser from ``info`` and the links; (row changed, bc_id inferred)."""
    changed = False
    if info is not None:
        fresh = {
            "name": clean(info.name),
            "company": clean(info.company),
            "status": clean(info.status),
            "role": clean(info.role),
            "industry": clean(info.industry),
            "currency": clean(info.currency),
            "timezone": clean(info.timezone),
            "display_timezone": clean(info.display_timezone),
            "country_code": clean(info.country),
            "owner_bc_id": clean(info.owner_bc_id),
            "ext_create_time": epoch_to_datetime(info.create_time),
        }
        for column in REPAIRED_COLUMNS:
            current = clean(getattr(advertiser, column))
            value = fresh[column] if fresh[column] is not None else current
            if value != getattr(advertiser, column):
                setattr(advertiser, column, value)
                changed = True
        raw = dict(advertiser.raw_json or {})
        if raw.get("info") != info.raw:
            raw["info"] = info.raw
            advertiser.raw_json = raw
        advertiser.hydrated_at = utcnow()

    inferred = False
    if not clean(advertiser.bc_id):
        bc_id = choose_bc_id(clean(advertiser.owner_bc_id), linked)
        if bc_id != advertiser.bc_id:
            advertiser.bc_id = bc_id
            changed = True
            inferred = bc_id is not None
    if changed:
        advertiser.content_hash = None
    return changed, inferred
