"""Engines and sessions.

The edge owns the transaction: a request dependency or a message handler opens ``session.begin()``;
services and repositories only flush. ``expire_on_commit`` is off so results stay readable
after commit.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from gmv_common.settings import Settings

_WAL_SWITCH_SECONDS = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver, so SAVEPOINTs work and ``_sqlite_begin`` decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    # WAL is a property of the file, and switching needs the file to itself. SQLite refuses the
    # switch at once ("database is locked", busy_timeout does not apply) while another connection
    # holds a lock, typically a second process switching the same new file. Look again: that
    # other connection usually switched it already; otherwise wait a little and try once more.
    deadline = time.monotonic() + _WAL_SWITCH_SECONDS
    while True:
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(0.02)


def _sqlite_begin(connection: Any) -> None:
    # A deferred transaction that reads, then writes while another connection writes, fails at
    # once with "database is locked" (SQLite cannot upgrade its lock). Taking the write lock at
    # BEGIN makes concurrent transactions of the embedded mode queue on busy_timeout instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(
    settings: Settings, *, database_url: str | None = None
) -> AsyncEngine:
    url = make_url(database_url or settings.database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(
            url, echo=settings.database_echo, connect_args={"timeout": 30}
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        echo=settings.database_echo,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"charset": "utf8mb4", "connect_timeout": 5},
        isolation_level="READ COMMITTED",
    )


def create_null_pool_engine(database_url: str) -> AsyncEngine:
    """A pool-less engine for one-shot tools (migrations, repair commands)."""
    return create_async_engine(make_url(database_url), poolclass=NullPool)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def is_mysql(session_or_engine: AsyncSession | AsyncEngine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, AsyncSession)
        else session_or_engine
    )
    return bind.dialect.name == "mysql"
