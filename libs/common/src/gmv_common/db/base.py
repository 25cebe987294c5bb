"""Declarative base, naming conventions and column types shared by every model.

Types are chosen to behave the same on MySQL 8, MariaDB 10.11 and SQLite:
- ``Timestamp`` is ``DATETIME(6)`` on MySQL and always returns timezone-aware UTC.
- ``JSONText`` stores JSON as text (``LONGTEXT`` on MySQL) so raw upstream payloads of any size fit.
- TikTok ids are strings (``VARCHAR(32)``); our own primary keys are ``BIGINT`` autoincrement.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String, Text
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on MySQL, INTEGER on SQLite so that ``INTEGER PRIMARY KEY`` autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# TikTok ids: numeric strings up to 19-20 digits; keep room.
TikTokId = String(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Timestamp(TypeDecorator[datetime]):
    """UTC timestamp with microseconds; naive values are refused."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a Timestamp column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        aware: datetime = value.replace(tzinfo=UTC)
        return aware


class JSONText(TypeDecorator[Any]):
    """JSON stored as text; deterministic (sorted keys) so equal content compares equal."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.LONGTEXT())
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sqlite.TEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return orjson.loads(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: Timestamp(), dict[str, Any]: JSONText()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        Timestamp(), default=utcnow, onupdate=utcnow
    )


__all__ = [
    "Base",
    "BigId",
    "JSONText",
    "TikTokId",
    "Timestamp",
    "TimestampMixin",
    "utcnow",
]
