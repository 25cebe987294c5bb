"""The app-wide TikTok request budget: a slot-reservation pacer shared by every process.

TikTok counts requests per developer app over a one-second window and answers ``40100``
when the app goes over. Every caller of one app therefore reserves its send time on one
shared pacer (a database row, see ``gmv_common.db.models.rate_limits``): it moves the
row's ``next_slot_at`` one interval forward in a short transaction of its own and sleeps
until the slot it got. Slots are spaced ``1 / (qps * utilisation * rate_factor)`` apart:
with ``utilisation`` below 1, ``floor(qps) + 1`` consecutive sends span more than one
second even when some of them leave a little late, so no one-second window upstream ever
holds more than ``qps`` requests, while a backlog still uses ``utilisation`` of the budget.

Priority: a bulk call may only take a slot at most ``bulk_horizon_seconds`` ahead; if the
pacer is booked further, it waits (one poller per process and app) and tries again. An
interactive call takes the next slot however far it is, so it overtakes any bulk backlog
and waits at most about one horizon behind it.

Back-off: after a ``40100`` the client calls ``report_throttled``; the shared
``rate_factor`` halves (at most once per second, never below ``min_rate_factor``) and the
pacer pauses for a second. It then grows back additively (``recovery_per_second``).

Late sends: a send that leaves late bunches up with the next ones. Each process reports
how late it woke for its slots and how long its requests then took to leave (a cold
connection, a stalled loop) with its next reservation; the row keeps the worst recent
delay (``jitter``, capped, halving every 10 s) and the spacing widens so that
``floor(qps) + 1`` sends span at least ``1 + jitter_margin * jitter`` seconds. On a quiet
machine that changes nothing; on a loaded one it trades a little rate for no ``40100``.
A caller that wakes later than half the remaining slack gives its slot up and reserves
another. Time is the callers' wall clock; across hosts it relies on NTP-synchronised
clocks (a skew of a few milliseconds eats into the slack).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gmv_common.db.models.rate_limits import TikTokRateLimit
from gmv_common.tiktok.errors import LimiterTimeoutError
from gmv_common.tiktok.metrics import (
    LIMITER_MISSED_SLOTS,
    LIMITER_RATE_FACTOR,
    LIMITER_WAIT,
)
from gmv_common.tiktok.models import Priority

log = structlog.get_logger(__name__)

# A compare-and-set loses only to another reservation that committed in between; under
# a row lock (MySQL) it never loses, on SQLite rarely more than a few times in a row.
MAX_CAS_ATTEMPTS = 100
CONFLICT_PAUSE_SECONDS = 0.01
LOCK_CONFLICT_MARKERS = ("database is locked", "Deadlock found", "Lock wait timeout")


@dataclass(frozen=True, slots=True)
class PacerConfig:
    """How the pacer spends an app's budget. The defaults suit TikTok's 1-second window."""

    utilisation: float = 0.95
    bulk_horizon_seconds: float = 0.4
    interactive_max_wait_seconds: float = 30.0
    bulk_max_wait_seconds: float = math.inf
    # How far ahead of now the first free slot is given: room for the reservation to
    # commit before its send time.
    start_lead_seconds: float = 0.005
    throttle_decrease: float = 0.5
    min_rate_factor: float = 0.1
    recovery_per_second: float = 0.05
    throttle_pause_seconds: float = 1.0
    decrease_cooldown_seconds: float = 1.0
    poll_jitter_seconds: float = 0.01
    jitter_margin: float = 3.0
    jitter_cap_seconds: float = 0.2
    jitter_half_life_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class PacerState:
    """The shared state of one app's pacer (one ``tiktok_rate_limits`` row)."""

    qps: float
    rate_factor: float = 1.0
    rate_factor_at: float = 0.0
    next_slot_at: float = 0.0
    throttled_at: float | None = None
    throttle_count: int = 0
    jitter: float = 0.0
    jitter_at: float = 0.0

    def effective_qps(self, now: float, config: PacerConfig) -> float:
        """The send rate the pacer hands out right now."""
        interval = slot_interval(
            self.qps,
            current_rate_factor(self, now, config),
            config,
            current_jitter(self, now, config),
        )
        return 1.0 / interval


@dataclass(frozen=True, slots=True)
class Reservation:
    """The outcome of one reservation attempt.

    ``slot_at`` is the granted send time, or None when the pacer is booked beyond the
    caller's horizon (try again at ``retry_at``) or beyond its deadline (``timed_out``).
    """

    slot_at: float | None
    retry_at: float
    late_tolerance: float
    state: PacerState
    timed_out: bool = False


def current_rate_factor(state: PacerState, now: float, config: PacerConfig) -> float:
    elapsed = max(0.0, now - state.rate_factor_at)
    return min(1.0, state.rate_factor + config.recovery_per_second * elapsed)


def current_jitter(state: PacerState, now: float, config: PacerConfig) -> float:
    """The callers' recent worst send delay, halving every ``jitter_half_life_seconds``."""
    elapsed = max(0.0, now - state.jitter_at)
    return state.jitter * math.pow(0.5, elapsed / config.jitter_half_life_seconds)


def slot_interval(
    qps: float, rate_factor: float, config: PacerConfig, jitter: float = 0.0
) -> float:
    """Spacing of slots: ``utilisation`` of the rate, or wider if sends run late.

    ``floor(qps) + 1`` sends must span more than one second even when one of them leaves
    ``jitter_margin * jitter`` late, so the spacing never drops below that.
    """
    paced = 1.0 / (qps * config.utilisation * rate_factor)
    sends_per_window = max(1, math.floor(qps))
    spread = (1.0 + config.jitter_margin * jitter) / (sends_per_window * rate_factor)
    return max(paced, spread)


def late_tolerance(qps: float, interval: float) -> float:
    """How late a send may leave and still keep every 1-second window within ``qps``."""
    sends_per_window = max(1, math.floor(qps))
    slack = sends_per_window * interval - 1.0
    return max(0.0, slack / 2)


def plan_reservation(
    state: PacerState,
    now: float,
    priority: Priority,
    deadline: float,
    config: PacerConfig,
    observed_lateness: float = 0.0,
) -> Reservation:
    """Grant the next slot, or say when to try again; never mutates ``state``.

    ``observed_lateness`` is how late the caller's process last woke for a slot; it
    raises the shared jitter estimate (up to ``jitter_cap_seconds``).
    """
    factor = current_rate_factor(state, now, config)
    jitter = min(
        config.jitter_cap_seconds,
        max(current_jitter(state, now, config), observed_lateness),
    )
    interval = slot_interval(state.qps, factor, config, jitter)
    tolerance = late_tolerance(state.qps, interval)
    slot = max(state.next_slot_at, now + config.start_lead_seconds)

    if slot > deadline:
        return Reservation(None, slot, tolerance, state, timed_out=True)
    if priority is Priority.BULK and slot > now + config.bulk_horizon_seconds:
        retry_at = slot - config.bulk_horizon_seconds
        return Reservation(None, retry_at, tolerance, state)

    granted = replace(
        state,
        rate_factor=factor,
        rate_factor_at=now,
        next_slot_at=slot + interval,
        jitter=jitter,
        jitter_at=now,
    )
    return Reservation(slot, slot, tolerance, granted)


def plan_throttle(state: PacerState, now: float, config: PacerConfig) -> PacerState:
    """Slow the pacer down after a ``40100``: halve the rate and pause for a second."""
    factor = current_rate_factor(state, now, config)
    throttled_at = state.throttled_at
    just_decreased = (
        throttled_at is not None
        and now - throttled_at < config.decrease_cooldown_seconds
    )
    if not just_decreased:
        factor = max(config.min_rate_factor, factor * config.throttle_decrease)
        throttled_at = now
    return replace(
        state,
        rate_factor=factor,
        rate_factor_at=now,
        throttled_at=throttled_at,
        throttle_count=state.throttle_count + 1,
        next_slot_at=max(state.next_slot_at, now + config.throttle_pause_seconds),
    )


@contextlib.contextmanager
def _lock_conflicts_retried() -> Iterator[None]:
    """Swallow a lost lock race so the caller's loop tries the transaction again.

    SQLite in WAL mode refuses a write lock at once, without waiting, when another
    connection wrote since this one started reading; MySQL reports deadlocks the same way.
    """
    try:
        yield
    except OperationalError as exc:
        if not any(marker in str(exc.orig) for marker in LOCK_CONFLICT_MARKERS):
            raise
        log.debug("tiktok.limiter.lock_conflict", error=type(exc.orig).__name__)


async def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


class RateLimiter(ABC):
    """One request budget per TikTok app id; ``acquire`` before every TikTok request."""

    def __init__(self, *, default_qps: float, config: PacerConfig | None) -> None:
        if default_qps <= 0:
            raise ValueError("default_qps must be positive")
        self.default_qps = default_qps
        self.config = config or PacerConfig()
        self._bulk_gates: dict[str, asyncio.Lock] = {}
        self._lateness: dict[str, float] = {}

    async def acquire(
        self, app_id: str, priority: Priority, *, max_wait: float | None = None
    ) -> float:
        """Wait for a send slot of ``app_id``'s budget; return the seconds waited.

        ``max_wait`` defaults to the config's limit for the priority (30 s interactive,
        unbounded bulk); past it, ``LimiterTimeoutError`` is raised without using a slot.
        """
        started = time.time()
        deadline = started + (
            max_wait if max_wait is not None else self._default_max_wait(priority)
        )
        while True:
            async with self._gate(app_id, priority):
                slot_at, tolerance = await self._reserve_until_granted(
                    app_id, priority, deadline
                )
            await _sleep_until(slot_at)
            lateness = time.time() - slot_at
            self._observe_lateness(app_id, lateness)
            if lateness <= tolerance:
                break
            LIMITER_MISSED_SLOTS.inc()
            log.info(
                "tiktok.limiter.slot_missed",
                app_id=app_id,
                priority=priority.value,
                lateness_ms=round(lateness * 1000, 1),
            )

        waited = time.time() - started
        LIMITER_WAIT.labels(priority=priority.value).observe(waited)
        return waited

    async def report_throttled(self, app_id: str) -> None:
        """Record a ``40100`` for ``app_id``: every process slows down."""
        state = await self._apply_throttle(app_id)
        LIMITER_RATE_FACTOR.labels(app_id=app_id).set(state.rate_factor)
        log.warning(
            "tiktok.limiter.throttled",
            app_id=app_id,
            rate_factor=round(state.rate_factor, 3),
            throttle_count=state.throttle_count,
        )

    def observe_send_delay(self, app_id: str, delay: float) -> None:
        """Report how long after its slot a request actually went out on the wire.

        The delay joins the wake-up delays this process reports with its next
        reservation, so slow connection set-ups widen the shared spacing too.
        """
        self._observe_lateness(app_id, delay)

    @abstractmethod
    async def set_qps(self, app_id: str, qps: float) -> None:
        """Configure ``app_id``'s limit (its TikTok tier: 10, 20, 30 or 50 QPS)."""

    @abstractmethod
    async def snapshot(self, app_id: str) -> PacerState | None:
        """The current shared state of ``app_id``'s pacer, if it was ever used."""

    @abstractmethod
    async def _reserve(
        self, app_id: str, priority: Priority, deadline: float
    ) -> Reservation: ...

    @abstractmethod
    async def _apply_throttle(self, app_id: str) -> PacerState: ...

    async def _reserve_until_granted(
        self, app_id: str, priority: Priority, deadline: float
    ) -> tuple[float, float]:
        while True:
            reservation = await self._reserve(app_id, priority, deadline)
            if reservation.slot_at is not None:
                self._lateness.pop(app_id, None)
                LIMITER_RATE_FACTOR.labels(app_id=app_id).set(
                    reservation.state.rate_factor
                )
                return reservation.slot_at, reservation.late_tolerance
            if reservation.timed_out or reservation.retry_at > deadline:
                raise LimiterTimeoutError(
                    f"TikTok app {app_id} has no free request slot within the wait "
                    "limit; try again shortly.",
                    retry_after=math.ceil(max(1.0, reservation.retry_at - time.time())),
                    details={"app_id": app_id, "priority": priority.value},
                )
            jitter = random.uniform(0, self.config.poll_jitter_seconds)
            await _sleep_until(reservation.retry_at + jitter)

    def _observe_lateness(self, app_id: str, lateness: float) -> None:
        # Kept until this process's next granted reservation carries it to the pacer.
        self._lateness[app_id] = max(self._lateness.get(app_id, 0.0), lateness)

    def _pending_lateness(self, app_id: str) -> float:
        """The worst wake-up delay seen since this process last reserved a slot."""
        return self._lateness.get(app_id, 0.0)

    def _default_max_wait(self, priority: Priority) -> float:
        if priority is Priority.INTERACTIVE:
            return self.config.interactive_max_wait_seconds
        return self.config.bulk_max_wait_seconds

    @contextlib.asynccontextmanager
    async def _gate(self, app_id: str, priority: Priority) -> AsyncIterator[None]:
        # Bulk callers of one process queue here so that only one of them polls the
        # shared pacer at a time; interactive callers go straight to it.
        if priority is Priority.INTERACTIVE:
            yield
            return
        gate = self._bulk_gates.setdefault(app_id, asyncio.Lock())
        async with gate:
            yield


@dataclass(frozen=True, slots=True)
class _Request:
    """One caller waiting for a slot, served by the next reservation transaction."""

    priority: Priority
    deadline: float
    outcome: asyncio.Future[Reservation]


class DatabaseRateLimiter(RateLimiter):
    """The production limiter: the pacer row lives in the shared database.

    Each reservation is one short transaction on its own session (never the caller's):
    ``SELECT ... FOR UPDATE`` on MySQL/MariaDB, then an ``UPDATE`` guarded by the row's
    ``version``, which also makes it a correct compare-and-set on SQLite (no row locks).
    Callers of one process waiting at the same time share one transaction.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        default_qps: float = 10.0,
        config: PacerConfig | None = None,
    ) -> None:
        super().__init__(default_qps=default_qps, config=config)
        self._sessions = sessions
        self._known_apps: set[str] = set()
        self._waiting: dict[str, list[_Request]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}

    async def set_qps(self, app_id: str, qps: float) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        await self._ensure_row(app_id, qps=qps)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(TikTokRateLimit)
                .where(TikTokRateLimit.app_id == app_id)
                .values(qps=qps, version=TikTokRateLimit.version + 1)
                .execution_options(synchronize_session=False)
            )

    async def snapshot(self, app_id: str) -> PacerState | None:
        async with self._sessions() as session, session.begin():
            loaded = await self._load(session, app_id, lock=False)
        return loaded[0] if loaded else None

    async def _reserve(
        self, app_id: str, priority: Priority, deadline: float
    ) -> Reservation:
        """Join the next reservation transaction of ``app_id`` and wait for its outcome.

        Callers of one process that ask while a transaction is running are served together
        by the next one: one row lock and one round trip for many slots, so concurrent
        requests are not paced by the database's transaction rate.
        """
        await self._ensure_row(app_id, qps=self.default_qps)
        future: asyncio.Future[Reservation] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(app_id, []).append(
            _Request(priority=priority, deadline=deadline, outcome=future)
        )
        if app_id not in self._flushers:
            self._flushers[app_id] = asyncio.create_task(self._flush(app_id))
        return await future

    async def _flush(self, app_id: str) -> None:
        try:
            while batch := self._waiting.pop(app_id, None):
                try:
                    reservations = await self._reserve_batch(app_id, batch)
                except BaseException as exc:
                    for request in batch:
                        if request.outcome.done():
                            continue
                        if isinstance(exc, Exception):
                            request.outcome.set_exception(exc)
                        else:
                            request.outcome.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for request, reservation in zip(batch, reservations, strict=True):
                    # A caller cancelled meanwhile leaves its slot unused.
                    if not request.outcome.done():
                        request.outcome.set_result(reservation)
        finally:
            del self._flushers[app_id]
            for request in self._waiting.pop(app_id, []):
                if not request.outcome.done():
                    request.outcome.cancel()

    async def _reserve_batch(
        self, app_id: str, batch: list[_Request]
    ) -> list[Reservation]:
        for _ in range(MAX_CAS_ATTEMPTS):
            with _lock_conflicts_retried():
                async with self._sessions() as session, session.begin():
                    state, version = await self._load_existing(session, app_id)
                    now = time.time()
                    lateness = self._pending_lateness(app_id)
                    reservations: list[Reservation] = []
                    granted = state
                    for request in batch:
                        reservation = plan_reservation(
                            granted,
                            now,
                            request.priority,
                            request.deadline,
                            self.config,
                            lateness,
                        )
                        if reservation.slot_at is not None:
                            granted = reservation.state
                        reservations.append(reservation)
                    if granted is state:
                        return reservations
                    if await self._store(session, app_id, version, granted):
                        return reservations
            await asyncio.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS))
        raise RuntimeError(f"rate limiter row {app_id} kept changing under us")

    async def _apply_throttle(self, app_id: str) -> PacerState:
        await self._ensure_row(app_id, qps=self.default_qps)
        for _ in range(MAX_CAS_ATTEMPTS):
            with _lock_conflicts_retried():
                async with self._sessions() as session, session.begin():
                    state, version = await self._load_existing(session, app_id)
                    throttled = plan_throttle(state, time.time(), self.config)
                    if await self._store(session, app_id, version, throttled):
                        return throttled
            await asyncio.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS))
        raise RuntimeError(f"rate limiter row {app_id} kept changing under us")

    async def _ensure_row(self, app_id: str, *, qps: float) -> None:
        if app_id in self._known_apps:
            return
        for _ in range(MAX_CAS_ATTEMPTS):
            if await self.snapshot(app_id) is not None:
                self._known_apps.add(app_id)
                return
            with _lock_conflicts_retried(), contextlib.suppress(IntegrityError):
                # An IntegrityError means another process created it first: fine.
                async with self._sessions() as session, session.begin():
                    await session.execute(
                        insert(TikTokRateLimit).values(
                            app_id=app_id,
                            qps=qps,
                            rate_factor=1.0,
                            rate_factor_at=0.0,
                            next_slot_at=0.0,
                            throttle_count=0,
                            jitter=0.0,
                            jitter_at=0.0,
                            version=0,
                        )
                    )
            await asyncio.sleep(random.uniform(0, CONFLICT_PAUSE_SECONDS))
        raise RuntimeError(f"rate limiter row {app_id} could not be created")

    async def _load_existing(
        self, session: AsyncSession, app_id: str
    ) -> tuple[PacerState, int]:
        loaded = await self._load(session, app_id, lock=True)
        if loaded is None:
            self._known_apps.discard(app_id)
            raise LookupError(f"rate limiter row {app_id} disappeared")
        return loaded

    @staticmethod
    async def _load(
        session: AsyncSession, app_id: str, *, lock: bool
    ) -> tuple[PacerState, int] | None:
        statement = select(
            TikTokRateLimit.qps,
            TikTokRateLimit.rate_factor,
            TikTokRateLimit.rate_factor_at,
            TikTokRateLimit.next_slot_at,
            TikTokRateLimit.throttled_at,
            TikTokRateLimit.throttle_count,
            TikTokRateLimit.jitter,
            TikTokRateLimit.jitter_at,
            TikTokRateLimit.version,
        ).where(TikTokRateLimit.app_id == app_id)
        if lock:
            statement = statement.with_for_update()
        row = (await session.execute(statement)).one_or_none()
        if row is None:
            return None
        state = PacerState(
            qps=row.qps,
            rate_factor=row.rate_factor,
            rate_factor_at=row.rate_factor_at,
            next_slot_at=row.next_slot_at,
            throttled_at=row.throttled_at,
            throttle_count=row.throttle_count,
            jitter=row.jitter,
            jitter_at=row.jitter_at,
        )
        return state, row.version

    @staticmethod
    async def _store(
        session: AsyncSession, app_id: str, version: int, state: PacerState
    ) -> bool:
        result = await session.execute(
            update(TikTokRateLimit)
            .where(TikTokRateLimit.app_id == app_id, TikTokRateLimit.version == version)
            .values(
                rate_factor=state.rate_factor,
                rate_factor_at=state.rate_factor_at,
                next_slot_at=state.next_slot_at,
                throttled_at=state.throttled_at,
                throttle_count=state.throttle_count,
                jitter=state.jitter,
                jitter_at=state.jitter_at,
                version=version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)


class InMemoryRateLimiter(RateLimiter):
    """The same pacer kept in this process only: the embedded mode and unit tests.

    Services use ``DatabaseRateLimiter``; this one cannot share a budget across processes.
    """

    def __init__(
        self, *, default_qps: float = 10.0, config: PacerConfig | None = None
    ) -> None:
        # The lead covers a reservation's commit in the shared database; a reservation in
        # memory is granted at once, so a slot may start now.
        super().__init__(
            default_qps=default_qps,
            config=config or PacerConfig(start_lead_seconds=0.0),
        )
        self._states: dict[str, PacerState] = {}
        self._lock = asyncio.Lock()

    async def set_qps(self, app_id: str, qps: float) -> None:
        if qps <= 0:
            raise ValueError("qps must be positive")
        async with self._lock:
            self._states[app_id] = replace(self._state(app_id), qps=qps)

    async def snapshot(self, app_id: str) -> PacerState | None:
        return self._states.get(app_id)

    async def _reserve(
        self, app_id: str, priority: Priority, deadline: float
    ) -> Reservation:
        async with self._lock:
            reservation = plan_reservation(
                self._state(app_id),
                time.time(),
                priority,
                deadline,
                self.config,
                self._pending_lateness(app_id),
            )
            if reservation.slot_at is not None:
                self._states[app_id] = reservation.state
            return reservation

    async def _apply_throttle(self, app_id: str) -> PacerState:
        async with self._lock:
            throttled = plan_throttle(self._state(app_id), time.time(), self.config)
            self._states[app_id] = throttled
            return throttled

    def _state(self, app_id: str) -> PacerState:
        return self._states.get(app_id) or PacerState(qps=self.default_qps)


__all__ = [
    "DatabaseRateLimiter",
    "InMemoryRateLimiter",
    "PacerConfig",
    "PacerState",
    "RateLimiter",
    "Reservation",
    "current_jitter",
    "current_rate_factor",
    "late_tolerance",
    "plan_reservation",
    "plan_throttle",
    "slot_interval",
]
