"""One product sync run: read a store's products for an advertiser, write the difference.

The run reads every page of ``store/product/get`` for each eligibility kind it covers while
a writer, fed page by page, upserts the rows in chunks, so the database work hides behind
the rate limiter's pacing. Everything the run writes, its final status and its event go in
one transaction: a worker that dies mid-run leaves nothing behind, and the next claim of
the run starts over from a clean state. Only a complete read (all pages, count equal to
``total_number``) tombstones what vanished upstream, and only in ``full`` mode.

Errors: a token TikTok refuses fails the run with ``TOKEN_INVALID`` and flags the binding
``needs_reauth``; a read that fails for one kind of an ``all`` request leaves the run
``partial``; another run writing the same store's rows first makes the run start over
(``STORE_BUSY`` after three tries); any other failure fails the run with the error's
stable code. A lost database connection is not recorded (it could not be): the run's
lease expires and the run is dispatched again, up to ``MAX_RUN_ATTEMPTS`` claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.bindings import (
    BindingCredentials,
    build_tiktok_client,
    load_binding_credentials,
    mark_needs_reauth,
)
from gmv_common.crypto import Keyring
from gmv_common.db.base import utcnow
from gmv_common.db.models import Binding, ProviderApp, SyncRun
from gmv_common.errors import GMVError
from gmv_common.events.schemas import ProductSyncRequested, SyncCompleted, SyncFailed
from gmv_common.logging import get_logger
from gmv_common.settings import Settings
from gmv_common.sync.runs import Lease, LeaseLostError, finish_run
from gmv_common.tiktok import (
    STORE_PRODUCT_PAGE_SIZE,
    Priority,
    RateLimiter,
    StoreProduct,
    TikTokAuthError,
    TikTokClient,
    TikTokError,
)
from gmv_common.tiktok.models import Page
from gmv_product_sync import repository
from gmv_product_sync.records import (
    ELIGIBILITY_FILTERS,
    eligibility_values,
    kinds_for,
    product_values,
)
from gmv_product_sync.repository import ELIGIBILITY_TABLE, PRODUCT_TABLE
from gmv_product_sync.schemas import KindRead, RunTally, read_error

log = get_logger(__name__)

WRITE_CHUNK = 1000
PAGE_QUEUE_DEPTH = 16
FETCH_CONCURRENCY = 2
STORE_BUSY_ATTEMPTS = 3
# Claims of one run (each worker death or lost database costs one) before it fails.
MAX_RUN_ATTEMPTS = 5
# MySQL/MariaDB: lock wait timeout, deadlock.
MYSQL_CONTENTION_CODES = frozenset({1205, 1213})

ClientFactory = Callable[[ProviderApp], TikTokClient]
T = TypeVar("T")


class ProductSyncError(GMVError):
    """A run cannot proceed; ``code`` is what the run's ``error_code`` says."""

    default_code = "PRODUCT_SYNC_FAILED"


class BindingUnusableError(ProductSyncError):
    default_code = "TOKEN_INVALID"
    status_code = 409


class StoreBcUnknownError(ProductSyncError):
    """No business center is known for the store, and the command named none."""

    default_code = "STORE_BC_UNKNOWN"
    status_code = 409


@dataclass(frozen=True, slots=True)
class RunOutcome:
    status: str
    stats: dict[str, Any]
    error_code: str | None = None


class ProductSyncService:
    """Executes claimed product sync runs; one instance per process."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        settings: Settings,
        limiter: RateLimiter,
        client_factory: ClientFactory | None = None,
        page_size: int = STORE_PRODUCT_PAGE_SIZE,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._keyring = keyring
        self._settings = settings
        self._limiter = limiter
        self._client_factory = client_factory or self._default_client
        self._page_size = page_size
        self._topic_prefix = settings.kafka_topic_prefix

    def _default_client(self, app: ProviderApp) -> TikTokClient:
        return build_tiktok_client(self._settings, limiter=self._limiter, app=app)

    async def execute(
        self, run: SyncRun, command: ProductSyncRequested, *, lease: Lease
    ) -> RunOutcome:
        """Run ``command`` (the claimed ``run``) to a final status, or raise ``LeaseLostError``."""
        started = time.perf_counter()
        tally = RunTally()
        if run.attempts > MAX_RUN_ATTEMPTS:
            exhausted = ProductSyncError(
                f"the run was started {run.attempts} times without finishing",
                code="RUN_ATTEMPTS_EXHAUSTED",
            )
            return await self._fail(
                run, command, exhausted, tally, started, owner=lease.owner, reauth=False
            )
        try:
            for attempt in range(1, STORE_BUSY_ATTEMPTS + 1):
                tally = RunTally()
                try:
                    async with self._sessionmaker() as session, session.begin():
                        return await self._sync(
                            session, run, command, lease, tally, started
                        )
                except (IntegrityError, OperationalError) as exc:
                    if not _store_contention(exc) or attempt == STORE_BUSY_ATTEMPTS:
                        raise
                    # Another run wrote the same products (another advertiser of this
                    # store) and committed first: start over on top of its rows.
                    log.warning("product_sync.store_busy_retry", attempt=attempt)
            raise AssertionError("unreachable")
        except (IntegrityError, OperationalError) as exc:
            if not _store_contention(exc):
                raise
            failure: GMVError = ProductSyncError(
                "other runs kept writing this store's products; try again later",
                code="STORE_BUSY",
                retriable=True,
            )
            reauth = False
        except LeaseLostError:
            raise
        except TikTokAuthError as exc:
            failure = exc
            reauth = True
        except GMVError as exc:
            failure, reauth = exc, False
        except Exception as exc:
            log.exception("product_sync.crashed", run_id=run.id)
            failure = ProductSyncError(
                f"internal error: {type(exc).__name__}", code="INTERNAL_ERROR"
            )
            reauth = False
        return await self._fail(
            run, command, failure, tally, started, owner=lease.owner, reauth=reauth
        )

    async def _sync(
        self,
        session: AsyncSession,
        run: SyncRun,
        command: ProductSyncRequested,
        lease: Lease,
        tally: RunTally,
        started: float,
    ) -> RunOutcome:
        credentials = await load_binding_credentials(
            session,
            self._keyring,
            workspace_id=command.workspace_id,
            auth_id=command.auth_id,
        )
        if credentials.binding.status != "active":
            raise BindingUnusableError(
                f"the binding is {credentials.binding.status}; re-authorize it first",
                code="BINDING_REVOKED"
                if credentials.binding.status == "revoked"
                else "TOKEN_INVALID",
            )
        bc_id = command.bc_id or await repository.store_authorized_bc_id(
            session,
            workspace_id=command.workspace_id,
            auth_id=command.auth_id,
            advertiser_id=command.advertiser_id,
            store_id=command.store_id,
        )
        if bc_id is None:
            raise StoreBcUnknownError(
                "no business center is known for this store; run a meta sync first",
                details={"store_id": command.store_id},
            )
        await self._limiter.set_qps(credentials.app.app_id, credentials.app.qps_limit)

        writer = ProductWriter(session, command, tally, lease)
        read_started = time.perf_counter()
        async with self._client_factory(credentials.app) as client:
            for kind in kinds_for(command.eligibility):
                read = KindRead(kind)
                tally.reads[kind] = read
                await self._read_kind(client, credentials, bc_id, command, read, writer)
                if isinstance(read.error, TikTokAuthError):
                    raise read.error
        tally.phase_seconds["read_and_write"] = time.perf_counter() - read_started

        error = read_error(tally.reads)
        if error is not None and all(r.error for r in tally.reads.values()):
            raise error
        if command.mode == "full":
            tombstone_started = time.perf_counter()
            await writer.tombstone_vanished(tally.reads)
            tally.phase_seconds["tombstone"] = time.perf_counter() - tombstone_started

        lease.check()
        complete = error is None and all(r.complete for r in tally.reads.values())
        status = "succeeded" if complete else "partial"
        return await self._succeed(
            session,
            run,
            command,
            tally,
            started,
            status=status,
            bc_id=bc_id,
            owner=lease.owner,
        )

    async def _read_kind(
        self,
        client: TikTokClient,
        credentials: BindingCredentials,
        bc_id: str,
        command: ProductSyncRequested,
        read: KindRead,
        writer: ProductWriter,
    ) -> None:
        """Fetch every page into a queue while the writer drains it in chunks."""
        pages: asyncio.Queue[list[StoreProduct] | None] = asyncio.Queue(
            PAGE_QUEUE_DEPTH
        )

        async def fetch(page: int) -> Page[StoreProduct]:
            result = await client.get_store_products_page(
                credentials.tiktok,
                bc_id=bc_id,
                store_id=command.store_id,
                advertiser_id=command.advertiser_id,
                filtering={"ad_creation_eligible": ELIGIBILITY_FILTERS[read.kind]},
                priority=Priority.BULK,
                page=page,
                page_size=self._page_size,
            )
            writer.tally.api_calls += 1
            read.pages += 1
            read.total_numbers.add(result.page_info.total_number)
            return result

        async def fetch_rest(numbers: Iterator[int]) -> None:
            for number in numbers:
                page = await fetch(number)
                await pages.put(page.items)

        async def produce() -> None:
            # Page 1 tells how many pages there are; the rest are fetched by a few
            # concurrent fetchers, so the next request is already waiting for its rate
            # limiter slot while a page is in flight (no gap between paced sends).
            try:
                first = await fetch(1)
                await pages.put(first.items)
                if first.items and first.page_info.total_page > 1:
                    numbers = iter(range(2, first.page_info.total_page + 1))
                    async with asyncio.TaskGroup() as fetchers:
                        for _ in range(FETCH_CONCURRENCY):
                            fetchers.create_task(fetch_rest(numbers))
            except Exception as exc:
                while isinstance(exc, ExceptionGroup):
                    exc = exc.exceptions[0]
                read.error = exc
                log.warning(
                    "product_sync.read_failed",
                    kind=read.kind,
                    error=getattr(exc, "code", type(exc).__name__),
                )
            await pages.put(None)

        producer = asyncio.create_task(produce())
        try:
            buffer: list[StoreProduct] = []
            while (items := await pages.get()) is not None:
                read.rows_read += len(items)
                read.seen.update(item.item_group_id for item in items)
                buffer.extend(items)
                # Write as soon as the writer has caught up with the reader (paced reads:
                # page by page, short pauses of the event loop), in bigger chunks when
                # pages arrive faster than they are written (lifted QPS: fewer trips).
                if len(buffer) >= WRITE_CHUNK or pages.empty():
                    await writer.write(read.kind, buffer)
                    buffer = []
            await writer.write(read.kind, buffer)
            await producer
        finally:
            producer.cancel()
        if read.error is not None and not isinstance(read.error, TikTokError):
            raise read.error
        log.info("product_sync.kind_read", kind=read.kind, **read.summary())

    async def _succeed(
        self,
        session: AsyncSession,
        run: SyncRun,
        command: ProductSyncRequested,
        tally: RunTally,
        started: float,
        *,
        status: str,
        bc_id: str,
        owner: str,
    ) -> RunOutcome:
        finished_at = utcnow()
        stats = tally.stats(
            total_seconds=time.perf_counter() - started, attempt=run.attempts
        )
        product_changes = tally.products.event_changes()
        eligibility_changes = tally.eligibility.event_changes()
        error = read_error(tally.reads)
        event = SyncCompleted(
            workspace_id=command.workspace_id,
            auth_id=command.auth_id,
            run_id=run.id,
            scope="products",
            mode=command.mode,
            trigger=command.trigger,
            status=status,  # type: ignore[arg-type]
            started_at=run.started_at,
            finished_at=finished_at,
            stats=stats,
            changes={
                "products": product_changes,
                "product_eligibility": eligibility_changes,
            },
            params=_params(command, bc_id),
            errors=[_error_item(error)] if error is not None else [],
        )
        await finish_run(
            session,
            run.id,
            owner=owner,
            status=status,
            stats=stats,
            event=event,
            topic_prefix=self._topic_prefix,
            error_code=getattr(error, "code", None),
            error_message=str(error) if error is not None else None,
        )
        await record_on_binding_config(
            session, command, run_id=run.id, status=status, stats=stats, at=finished_at
        )
        log.info("product_sync.finished", status=status, **_headline(stats))
        return RunOutcome(status, stats, getattr(error, "code", None))

    async def _fail(
        self,
        run: SyncRun,
        command: ProductSyncRequested,
        failure: GMVError,
        tally: RunTally,
        started: float,
        *,
        owner: str,
        reauth: bool,
    ) -> RunOutcome:
        finished_at = utcnow()
        stats = tally.stats(
            total_seconds=time.perf_counter() - started, attempt=run.attempts
        )
        error_code = "TOKEN_INVALID" if reauth else failure.code
        async with self._sessionmaker.begin() as session:
            if reauth:
                binding = await session.scalar(
                    select(Binding).where(
                        Binding.id == command.auth_id,
                        Binding.workspace_id == command.workspace_id,
                    )
                )
                if binding is not None:
                    await mark_needs_reauth(
                        session,
                        binding,
                        reason=f"{failure.code}: {failure}",
                        topic_prefix=self._topic_prefix,
                    )
            event = SyncFailed(
                workspace_id=command.workspace_id,
                auth_id=command.auth_id,
                run_id=run.id,
                scope="products",
                mode=command.mode,
                trigger=command.trigger,
                error_code=error_code,
                error_message=str(failure)[:1000],
                finished_at=finished_at,
                stats=stats,
                params=_params(command, command.bc_id),
            )
            await finish_run(
                session,
                run.id,
                owner=owner,
                status="failed",
                stats=stats,
                event=event,
                topic_prefix=self._topic_prefix,
                error_code=error_code,
                error_message=str(failure),
            )
            await record_on_binding_config(
                session,
                command,
                run_id=run.id,
                status="failed",
                stats=stats,
                at=finished_at,
                error_code=error_code,
            )
        log.warning("product_sync.failed", error_code=error_code, reauth=reauth)
        return RunOutcome("failed", stats, error_code)


class ProductWriter:
    """Writes one run's products and eligibility rows in chunks, and what vanished."""

    def __init__(
        self,
        session: AsyncSession,
        command: ProductSyncRequested,
        tally: RunTally,
        lease: Lease,
    ) -> None:
        self.session = session
        self.command = command
        self.tally = tally
        self.lease = lease
        self.now = utcnow()
        self._products_done: set[str] = set()
        # A store synced for the first time has nothing to compare with: skip the lookups.
        self._store_is_new: bool | None = None
        self._eligibility_done: dict[str, set[str]] = {}

    @asynccontextmanager
    async def _timed(self) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.tally.db_seconds += time.perf_counter() - started

    async def _db(self, action: Awaitable[T]) -> T:
        async with self._timed():
            return await action

    async def write(self, kind: str, items: Sequence[StoreProduct]) -> None:
        self.lease.check()
        unique = list({item.item_group_id: item for item in items}.values())
        if not unique:
            return
        await self._write_products(unique)
        await self._write_eligibility(kind, unique)

    async def _write_products(self, items: list[StoreProduct]) -> None:
        command, changes = self.command, self.tally.products
        if self._store_is_new is None:
            self._store_is_new = not await self._db(
                repository.has_products(
                    self.session,
                    workspace_id=command.workspace_id,
                    auth_id=command.auth_id,
                    store_id=command.store_id,
                )
            )
        fresh = [
            i.item_group_id for i in items if i.item_group_id not in self._products_done
        ]
        stored = (
            {}
            if self._store_is_new and len(fresh) == len(items)
            else await self._db(
                repository.load_products(
                    self.session,
                    workspace_id=command.workspace_id,
                    auth_id=command.auth_id,
                    store_id=command.store_id,
                    item_group_ids=[item.item_group_id for item in items],
                )
            )
        )
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for item in items:
            existing = stored.get(item.item_group_id)
            values = product_values(item, existing)
            row = {
                "workspace_id": command.workspace_id,
                "auth_id": command.auth_id,
                "store_id": command.store_id,
                **values,
                "first_seen_at": self.now,
                "last_seen_at": self.now,
                "deleted_at": None,
            }
            first_time = item.item_group_id not in self._products_done
            self._products_done.add(item.item_group_id)
            if existing is None:
                inserts.append(row)
                changes.added.add(item.item_group_id)
            elif existing.deleted_at is not None:
                updates.append({"id": existing.id, **row})
                changes.added.add(item.item_group_id)
            elif existing.content_hash != values["content_hash"]:
                updates.append({"id": existing.id, **row})
                changes.updated.add(item.item_group_id)
            elif first_time:
                changes.unchanged += 1
        await self._db(repository.insert_rows(self.session, PRODUCT_TABLE, inserts))
        await self._db(
            repository.update_rows_by_id(
                self.session,
                PRODUCT_TABLE,
                updates,
                columns=repository.PRODUCT_UPDATE_COLUMNS,
            )
        )

    async def _write_eligibility(self, kind: str, items: list[StoreProduct]) -> None:
        command, changes = self.command, self.tally.eligibility
        done = self._eligibility_done.setdefault(kind, set())
        repeated = any(item.item_group_id in done for item in items)
        done.update(item.item_group_id for item in items)
        stored = (
            {}
            if self._store_is_new and not repeated
            else await self._db(
                repository.load_eligibility(
                    self.session,
                    workspace_id=command.workspace_id,
                    auth_id=command.auth_id,
                    store_id=command.store_id,
                    advertiser_id=command.advertiser_id,
                    eligibility=kind,
                    item_group_ids=[item.item_group_id for item in items],
                )
            )
        )
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for item in items:
            values = eligibility_values(item)
            key = f"{kind}:{item.item_group_id}"
            existing = stored.get(item.item_group_id)
            row = {
                "workspace_id": command.workspace_id,
                "auth_id": command.auth_id,
                "store_id": command.store_id,
                "advertiser_id": command.advertiser_id,
                "eligibility": kind,
                **values,
                "first_seen_at": self.now,
                "last_seen_at": self.now,
                "deleted_at": None,
            }
            if existing is None:
                inserts.append(row)
                changes.added.add(key)
            elif not existing.same_as(values):
                updates.append({"id": existing.id, **row})
                (changes.added if existing.deleted_at else changes.updated).add(key)
            else:
                changes.unchanged += 1
        await self._db(repository.insert_rows(self.session, ELIGIBILITY_TABLE, inserts))
        await self._db(
            repository.update_rows_by_id(
                self.session,
                ELIGIBILITY_TABLE,
                updates,
                columns=repository.ELIGIBILITY_UPDATE_COLUMNS,
            )
        )

    async def tombstone_vanished(self, reads: dict[str, KindRead]) -> None:
        """After complete reads: retire eligibility rows, then products nobody can use."""
        command = self.command
        for kind, read in reads.items():
            if not read.complete:
                continue
            live_count = await self._db(
                repository.count_live_eligibility(
                    self.session,
                    workspace_id=command.workspace_id,
                    auth_id=command.auth_id,
                    store_id=command.store_id,
                    advertiser_id=command.advertiser_id,
                    eligibility=kind,
                )
            )
            if live_count == len(read.seen):
                continue  # every live row was seen in this read: nothing vanished
            live = await self._db(
                repository.live_eligibility(
                    self.session,
                    workspace_id=command.workspace_id,
                    auth_id=command.auth_id,
                    store_id=command.store_id,
                    advertiser_id=command.advertiser_id,
                    eligibility=kind,
                )
            )
            gone = {ig: row for ig, row in live.items() if ig not in read.seen}
            await self._db(
                repository.tombstone(
                    self.session, ELIGIBILITY_TABLE, list(gone.values()), now=self.now
                )
            )
            self.tally.eligibility.removed.update(f"{kind}:{ig}" for ig in gone)
        if not all(read.complete for read in reads.values()):
            return
        live_count = await self._db(
            repository.count_live_products(
                self.session,
                workspace_id=command.workspace_id,
                auth_id=command.auth_id,
                store_id=command.store_id,
            )
        )
        if live_count == len(self._products_done):
            return

        live_products = await self._db(
            repository.live_products(
                self.session,
                workspace_id=command.workspace_id,
                auth_id=command.auth_id,
                store_id=command.store_id,
            )
        )
        candidates = [ig for ig in live_products if ig not in self._products_done]
        kept = await self._db(
            repository.still_eligible_anywhere(
                self.session,
                workspace_id=command.workspace_id,
                auth_id=command.auth_id,
                store_id=command.store_id,
                item_group_ids=candidates,
            )
        )
        gone_products = [ig for ig in candidates if ig not in kept]
        await self._db(
            repository.tombstone(
                self.session,
                PRODUCT_TABLE,
                [live_products[ig] for ig in gone_products],
                now=self.now,
            )
        )
        self.tally.products.removed.update(gone_products)


async def record_on_binding_config(
    session: AsyncSession,
    command: ProductSyncRequested,
    *,
    run_id: int,
    status: str,
    stats: dict[str, Any],
    at: datetime,
    error_code: str | None = None,
) -> bool:
    """Note the run on the binding's GMV Max config when it synced the configured pair."""
    config = await repository.binding_config(
        session, workspace_id=command.workspace_id, auth_id=command.auth_id
    )
    if config is None or (config.advertiser_id, config.store_id) != (
        command.advertiser_id,
        command.store_id,
    ):
        return False
    summary = {"run_id": run_id, "status": status, **_headline(stats)}
    if error_code:
        summary["error_code"] = error_code
    if command.trigger == "auto":
        config.last_auto_sync_at = at
        config.last_auto_run_id = run_id
        config.last_auto_summary = summary
    else:
        config.last_manual_sync_at = at
        config.last_manual_run_id = run_id
        config.last_manual_summary = summary
    await session.flush()
    return True


def _headline(stats: dict[str, Any]) -> dict[str, Any]:
    keys = ("fetched", "added", "updated", "removed", "unchanged", "api_calls")
    return {key: stats.get(key) for key in keys}


def _params(command: ProductSyncRequested, bc_id: str | None) -> dict[str, Any]:
    return {
        "advertiser_id": command.advertiser_id,
        "store_id": command.store_id,
        "bc_id": bc_id,
        "eligibility": command.eligibility,
    }


def _store_contention(exc: Exception) -> bool:
    """A duplicate key, lock wait timeout or deadlock from a concurrent writer."""
    if isinstance(exc, IntegrityError):
        return True
    args = getattr(getattr(exc, "orig", None), "args", ())
    code = args[0] if args else None
    return code in MYSQL_CONTENTION_CODES or "database is locked" in str(exc)


def _error_item(error: Exception) -> dict[str, Any]:
    return {
        "code": getattr(error, "code", type(error).__name__),
        "message": str(error)[:500],
    }
