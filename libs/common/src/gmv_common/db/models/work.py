"""Work tables: sync runs, schedules, options documents, outbox, inbox and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from gmv_common.db.base import Base, BigId, JSONText, Timestamp, TimestampMixin, utcnow

RUN_SCOPES = ("meta", "products")
RUN_MODES = ("full", "incremental")
RUN_TRIGGERS = ("manual", "refresh", "schedule", "auto", "oauth", "repair")
ACTIVE_RUN_STATUSES = ("queued", "running")
FINAL_RUN_STATUSES = ("succeeded", "partial", "failed")

# The task kinds the older system knew; schedules and runs name one of them.
TASK_KINDS = (
    "ttb.sync.meta",
    "ttb.sync.products",
    "ttb.sync.bc",
    "ttb.sync.advertisers",
    "ttb.sync.stores",
    "ttb.sync.all",
)


class SyncRun(Base):
    """One requested sync of a binding (``meta``) or of one advertiser/store pair (``products``).

    ``active_key`` is set while the run is queued or running and cleared when it ends; its unique
    index
    makes "one active run per target" hold across every gateway and scheduler replica.
    """

    __tablename__ = "sync_runs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "auth_id", "scope", "idempotency_key"),
        Index("ix_sync_runs_binding_created", "workspace_id", "auth_id", "created_at"),
        Index("ix_sync_runs_target_created", "target_key", "created_at"),
        Index("ix_sync_runs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    auth_id: Mapped[int] = mapped_column(
        ForeignKey("ttb_bindings.id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(String(16))
    task_kind: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16), default="full")
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[Any | None] = mapped_column(JSONText())
    # What the run syncs, e.g. "meta:3:7" or "products:3:7:<advertiser>:<store>:gmv_max".
    target_key: Mapped[str] = mapped_column(String(255))
    active_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    requested_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("schedules.id", ondelete="SET NULL")
    )
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(1024))
    stats: Mapped[Any | None] = mapped_column(JSONText())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(Timestamp())
    heartbeat_at: Mapped[datetime | None] = mapped_column(Timestamp())
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp())
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp())


class TaskCatalogEntry(Base):
    __tablename__ = "task_catalog"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_kind: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(512))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Schedule(TimestampMixin, Base):
    """A recurring sync of a binding (``ttb.sync.meta``) or a pair (``ttb.sync.products``)."""

    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("workspace_id", "auth_id", "task_kind"),
        Index("ix_schedules_due", "enabled", "next_fire_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    auth_id: Mapped[int] = mapped_column(
        ForeignKey("ttb_bindings.id", ondelete="CASCADE")
    )
    task_kind: Mapped[str] = mapped_column(
        ForeignKey("task_catalog.task_kind", ondelete="RESTRICT")
    )
    params: Mapped[Any | None] = mapped_column(JSONText())
    interval_seconds: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_fire_at: Mapped[datetime] = mapped_column(Timestamp())
    last_fired_at: Mapped[datetime | None] = mapped_column(Timestamp())
    last_run_id: Mapped[int | None] = mapped_column(Integer)


class GmvMaxOptions(Base):
    """The materialized options document of one binding, its strong ETag and version."""

    __tablename__ = "gmvmax_options"
    __table_args__ = (UniqueConstraint("workspace_id", "auth_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    auth_id: Mapped[int] = mapped_column(
        ForeignKey("ttb_bindings.id", ondelete="CASCADE")
    )
    document: Mapped[bytes] = mapped_column(
        LargeBinary().with_variant(mysql.LONGBLOB(), "mysql")
    )
    etag: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer, default=1)
    run_id: Mapped[int | None] = mapped_column(Integer)
    synced_at: Mapped[datetime | None] = mapped_column(Timestamp())
    built_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class OutboxMessage(Base):
    """A message written in the caller's transaction and published to the bus by the relay."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(255))
    message_key: Mapped[str] = mapped_column(String(255))
    headers: Mapped[Any] = mapped_column(JSONText())
    payload: Mapped[str] = mapped_column(Text().with_variant(mysql.LONGTEXT(), "mysql"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(Timestamp())
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None] = mapped_column(Timestamp())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1024))


class InboxMessage(Base):
    """A message id a consumer group has processed; a replayed message is skipped."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("consumer_group", "message_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consumer_group: Mapped[str] = mapped_column(String(128))
    message_id: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(255))
    processed_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class AuditLogEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_workspace_created", "workspace_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(128))
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[Any | None] = mapped_column(JSONText())
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
